"""hypermail-django: production email for Django.

The backend is ``hypermail_django.backends.FluxMailBackend``; this module gathers
the helpers around it. Settings files import it (``options_from_env``), so
everything that pulls in Django's mail machinery is imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .env import options_from_env, settings_from_env
from .exceptions import FluxMailException
from .transport import DeliveryStatus, RecipientStatus

if TYPE_CHECKING:
    from .background import (
        aenqueue_messages,
        asend_mail_later,
        enqueue_messages,
        send_mail_later,
    )
    from .bulk import asend_bulk, send_bulk
    from .health import test_connection
    from .mailers import get_mailer
    from .sending import asend_mail, asend_messages

__version__ = "0.1.0"

__all__ = [
    "DeliveryStatus",
    "FluxMailException",
    "RecipientStatus",
    "aenqueue_messages",
    "asend_bulk",
    "asend_mail",
    "asend_mail_later",
    "asend_messages",
    "enqueue_messages",
    "get_mailer",
    "options_from_env",
    "send_bulk",
    "send_mail_later",
    "settings_from_env",
    "test_connection",
]

#: Public name -> the module that defines it, imported when first used.
_LAZY = {
    "aenqueue_messages": ".background",
    "asend_bulk": ".bulk",
    "asend_mail": ".sending",
    "asend_mail_later": ".background",
    "asend_messages": ".sending",
    "enqueue_messages": ".background",
    "get_mailer": ".mailers",
    "send_bulk": ".bulk",
    "send_mail_later": ".background",
    "test_connection": ".health",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
