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
    from .bulk import asend_bulk, send_bulk
    from .health import test_connection
    from .sending import asend_mail, asend_messages, get_mailer

__version__ = "0.1.0"

#: Public name -> the module that defines it, imported when first used.
_LAZY = {
    "asend_bulk": ".bulk",
    "asend_mail": ".sending",
    "asend_messages": ".sending",
    "get_mailer": ".sending",
    "send_bulk": ".bulk",
    "test_connection": ".health",
}

__all__ = [
    "DeliveryStatus",
    "FluxMailException",
    "RecipientStatus",
    "options_from_env",
    "settings_from_env",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
