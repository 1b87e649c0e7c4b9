"""Password reset: tokens, the reset email, HTML pages and a JSON API.

- ``generate_reset_token(user)`` / ``check_reset_token(uid, token)``: Django's
  ``PasswordResetTokenGenerator``;
- ``send_password_reset_email(user, *, reset_url_template, ...)``: the
  templated email, sent now;
- ``include("hypermail_django.auth.urls")``: the HTML pages;
- ``include("hypermail_django.auth.api_urls")``: the JSON API.

The pages and the API never send in the request: they hand the address to a
Django Tasks task or a thread (``delivery.py``), so the answer is the same for
every address. See ``docs/password-reset.md``.

Names are imported on first use: settings files may import this package
before Django is set up.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .delivery import wait_for_deliveries
    from .emails import password_reset_message, send_password_reset_email
    from .flow import request_password_reset
    from .tokens import ResetToken, check_reset_token, generate_reset_token

_LAZY = {
    "ResetToken": ".tokens",
    "check_reset_token": ".tokens",
    "generate_reset_token": ".tokens",
    "password_reset_message": ".emails",
    "request_password_reset": ".flow",
    "send_password_reset_email": ".emails",
    "wait_for_deliveries": ".delivery",
}

__all__ = [
    "ResetToken",
    "check_reset_token",
    "generate_reset_token",
    "password_reset_message",
    "request_password_reset",
    "send_password_reset_email",
    "wait_for_deliveries",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
