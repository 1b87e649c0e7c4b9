"""The few places where Django 5.2, 6.0 and 6.1 differ for us, in one module."""

from __future__ import annotations

import re
from email.header import decode_header
from typing import Any

import django
from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend

from .serialization import email_policies as policies
from .serialization.flatten import flatten

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
    creating" it. Our own accessor (``conf/mailer_options.py``) reads every
    setting instead.
    On 6.1 ``fail_silently`` is no longer the base class's business.
    """
    if MAILERS_SUPPORTED:
        BaseEmailBackend.__init__(backend, alias=alias)
    else:
        BaseEmailBackend.__init__(backend, fail_silently=fail_silently)
        backend.alias = alias  # Always None before 6.1; set for a uniform API.


def warn_direct_construction() -> None:
    """Django 6.1 deprecates building a backend without ``alias`` (instead of
    through ``mail.mailers``); warn as its own backend does: only when code
    outside Django and hypermail-django builds it."""
    if not MAILERS_SUPPORTED:
        return
    from django.utils.deprecation import (  # type: ignore[attr-defined,unused-ignore]
        RemovedInDjango2028Warning,
        warn_about_external_use,
    )

    warn_about_external_use(
        "Directly creating EmailBackend instances is deprecated. "
        "Use mail.mailers instead.",
        RemovedInDjango2028Warning,
        skip_name_prefixes="hypermail_django.backends",
        internal_modules=("django", "hypermail_django"),
    )


def ignore_unknown(
    backend: Any, options: dict[str, Any], ignored: Any = ()
) -> dict[str, Any]:
    """Drop keywords that are not options, as Django's backend ignores them
    when not built for a ``MAILERS`` entry: on 6.1 with Django's own
    deprecation warning, before with a warning naming the likely option."""
    from .conf.mailer_options import OPTIONS, unknown_options_message

    unknown = {
        name: value
        for name, value in options.items()
        if name not in OPTIONS and name not in set(ignored)
    }
    if not unknown:
        return options
    if MAILERS_SUPPORTED:
        BaseEmailBackend.__init__(backend, **unknown)  # warns, ignores
    else:
        import warnings

        warnings.warn(
            unknown_options_message(list(unknown), None, type(backend).__name__)
            + " They are ignored, as by Django's SMTP backend.",
            UserWarning,
            stacklevel=4,
        )
    return {name: value for name, value in options.items() if name not in unknown}


#: An RFC 2047 encoded word used as a local part: what Django 5.2 writes for
#: a non-ASCII local part (``=?utf-8?b?...?=@example.com``).
_ENCODED_LOCAL_PART = re.compile(r"=\?utf-8\?[bq]\?[^?]*\?=(?=@)", re.IGNORECASE)


def _utf8_address_headers(msg: Any) -> None:
    """Django 5.2 writes a non-ASCII local part as an encoded word inside the
    address, which RFC 2047 section 5 forbids; with SMTPUTF8 the local part
    goes in as UTF-8 (RFC 6532), as Django 6.x writes it. Nothing else of
    Django's header changes (display names, IDNA domains)."""
    changed = False
    for name in ("From", "To", "Cc", "Reply-To"):
        value = msg[name]
        if value is None:
            continue
        text = str(value)
        fixed = _ENCODED_LOCAL_PART.sub(_decoded_word, text)
        if fixed != text:
            # Surrogate-escaped bytes are written as they are by an 8bit policy.
            msg.replace_header(name, fixed.encode().decode("ascii", "surrogateescape"))
            changed = True
    if changed:
        msg.policy = msg.policy.clone(cte_type="8bit")


def _decoded_word(match: re.Match[str]) -> str:
    ((data, charset),) = decode_header(match.group(0))
    return data.decode(charset or "utf-8") if isinstance(data, bytes) else data


def serialize(message: Any, *, smtputf8: bool) -> tuple[bytes, str | None]:
    """Serialize a Django ``EmailMessage`` for SMTP as Django's own backend does.

    Returns the bytes and the Message-ID they carry.
    """
    if MODERN_EMAIL_API:
        # The standard SMTP policies, minus work they repeat
        # (serialization/email_policies.py).
        policy = policies.SMTPUTF8 if smtputf8 else policies.SMTP
        msg = message.message(policy=policy)
        data = flatten(msg)
    else:
        msg = message.message()
        msg.policy = policies.COMPAT32  # compat32, reusing folded headers
        if smtputf8:
            _utf8_address_headers(msg)
        data = flatten(msg, linesep="\r\n")
    message_id = msg["Message-ID"]
    return data, (str(message_id) if message_id is not None else None)
