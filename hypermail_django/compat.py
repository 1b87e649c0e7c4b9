"""The few places where Django 5.2, 6.0 and 6.1 differ for us, in one module."""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

from . import policies
from .flatten import flatten

DJANGO_VERSION = django.VERSION[:2]
#: Django 6.1 added ``settings.MAILERS`` and mailer aliases.
MAILERS_SUPPORTED = DJANGO_VERSION >= (6, 1)
#: Django 6.0 builds messages with the modern email API (``message(policy=...)``).
MODERN_EMAIL_API = DJANGO_VERSION >= (6, 0)


def mailers_configured() -> bool:
    """True when the project opted into ``MAILERS`` (so ``EMAIL_*`` are off limits)."""
    return MAILERS_SUPPORTED and hasattr(settings, "MAILERS")


def legacy_setting(name: str) -> Any:
    """Read an ``EMAIL_*`` setting; raise ``AttributeError`` when it is not set.

    On Django 6.1 every read of a deprecated ``EMAIL_*`` setting from outside
    Django warns. Django already warns once at start-up for each one a project
    sets, so we read them past that per-read warning instead of repeating it on
    every message.
    """
    if MAILERS_SUPPORTED:
        settings.DEBUG  # noqa: B018 - makes sure the settings are loaded
        return getattr(settings._wrapped, name)
    return getattr(settings, name)


def init_base_backend(backend: Any, *, alias: str | None, fail_silently: bool) -> None:
    """Run ``BaseEmailBackend.__init__`` the way each Django version wants it.

    We skip Django's ``smtp.EmailBackend.__init__`` on purpose: it reads the
    ``EMAIL_*`` settings itself, and on 6.1 warns that a subclass is "directly
    creating" it. Our own accessor (``conf.py``) reads every setting instead.
    On 6.1 ``fail_silently`` is no longer the base class's business.
    """
    if MAILERS_SUPPORTED:
        BaseEmailBackend.__init__(backend, alias=alias)
    else:
        BaseEmailBackend.__init__(backend, fail_silently=fail_silently)
        backend.alias = alias  # Always None before 6.1; set for a uniform API.


def serialize(message: Any, *, smtputf8: bool) -> tuple[bytes, str | None]:
    """Serialize a Django ``EmailMessage`` for SMTP as Django's own backend does.

    Returns the bytes and the Message-ID they carry.
    """
    if MODERN_EMAIL_API:
        # The standard SMTP policies, minus work they repeat (policies.py).
        policy = policies.SMTPUTF8 if smtputf8 else policies.SMTP
        msg = message.message(policy=policy)
        data = flatten(msg)
    else:
        msg = message.message()
        msg.policy = policies.COMPAT32  # compat32, reusing folded headers
        data = flatten(msg, linesep="\r\n")
    message_id = msg["Message-ID"]
    return data, (str(message_id) if message_id is not None else None)
