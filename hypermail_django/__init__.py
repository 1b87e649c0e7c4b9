"""hypermail-django: production email for Django.

The backend is ``hypermail_django.backends.FluxMailBackend``; this module gathers
the helpers around it. Settings files import it (``options_from_env``), and
``hypermail_django.transport`` and ``hypermail_django.testing`` promise not to
load Django, so every name here is imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .transport.results import DeliveryStatus, RecipientStatus

if TYPE_CHECKING:
    from .async_mail import asend_mail, asend_messages
    from .auth.emails import send_password_reset_email
    from .auth.tokens import generate_reset_token
    from .background import (
        aenqueue_messages,
        asend_mail_later,
        enqueue_messages,
        send_mail_later,
    )
    from .bulk import asend_bulk, send_bulk
    from .compose.email_template import EmailTemplate
    from .compose.message import HypermailMessage
    from .compose.templated import TemplatedEmail, send_templated_mail
    from .conf.env import options_from_env, settings_from_env
    from .conf.mailers import get_mailer
    from .exceptions import FluxMailException
    from .health import test_connection
    from .testing.outbox import clear_outbox, get_outbox

__version__ = "0.1.0"

__all__ = [
    "DeliveryStatus",
    "EmailTemplate",
    "FluxMailException",
    "HypermailMessage",
    "RecipientStatus",
    "TemplatedEmail",
    "aenqueue_messages",
    "asend_bulk",
    "asend_mail",
    "asend_mail_later",
    "asend_messages",
    "clear_outbox",
    "enqueue_messages",
    "generate_reset_token",
    "get_mailer",
    "get_outbox",
    "options_from_env",
    "send_bulk",
    "send_mail_later",
    "send_password_reset_email",
    "send_templated_mail",
    "settings_from_env",
    "test_connection",
]

#: Public name -> the module that defines it, imported when first used.
_LAZY = {
    "EmailTemplate": ".compose.email_template",
    "FluxMailException": ".exceptions",
    "options_from_env": ".conf.env",
    "settings_from_env": ".conf.env",
    "HypermailMessage": ".compose.message",
    "TemplatedEmail": ".compose.templated",
    "aenqueue_messages": ".background",
    "asend_bulk": ".bulk",
    "asend_mail": ".async_mail",
    "asend_mail_later": ".background",
    "asend_messages": ".async_mail",
    "clear_outbox": ".testing.outbox",
    "enqueue_messages": ".background",
    "generate_reset_token": ".auth.tokens",
    "get_mailer": ".conf.mailers",
    "get_outbox": ".testing.outbox",
    "send_bulk": ".bulk",
    "send_mail_later": ".background",
    "send_password_reset_email": ".auth.emails",
    "send_templated_mail": ".compose.templated",
    "test_connection": ".health",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
