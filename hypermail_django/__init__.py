"""hypermail-django: production email for Django.

The backend is ``hypermail_django.backends.FluxMailBackend``; this module gathers
the helpers around it.
"""

from .env import options_from_env, settings_from_env
from .exceptions import FluxMailException
from .transport import DeliveryStatus, RecipientStatus

__version__ = "0.1.0"

__all__ = [
    "DeliveryStatus",
    "FluxMailException",
    "RecipientStatus",
    "options_from_env",
    "settings_from_env",
]
