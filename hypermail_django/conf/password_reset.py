"""The ``HYPERMAIL_PASSWORD_RESET_*`` settings, read at call time and checked.

Every value is read when a reset is requested or an email is sent, never at
import, so ``override_settings`` works and a worker sees what the web process
sees. Every error names the setting to fix. The lifetime of a link is Django's
own ``PASSWORD_RESET_TIMEOUT``; the task backend and queue of the Tasks
delivery are ``HYPERMAIL_BACKGROUND_BACKEND`` and ``HYPERMAIL_BACKGROUND_QUEUE``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from django.utils.module_loading import import_string

from ..exceptions import ConfigurationError
from .validators import Check, nonempty_text, optional_nonempty_text, read_settings

PREFIX = "HYPERMAIL_PASSWORD_RESET_"

#: How the email leaves the request (see ``delivery.py``).
DELIVERY_MODES = ("auto", "tasks", "thread")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Rate:
    """At most ``count`` requests per ``seconds``."""

    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}s"


@dataclass(frozen=True)
class ResetSettings:
    """What the password-reset flow needs from the settings (see
    ``docs/password-reset.md#settings``)."""

    #: Where reset links point: an absolute or root-relative URL with
    #: ``{uid}`` and ``{token}``; None: the HTML confirm view.
    url_template: str | None = None
    #: Scheme, host (and optional path prefix) for root-relative links; None:
    #: the request's, after ``ALLOWED_HOSTS`` validation.
    base_url: str | None = None
    #: The reset email's sender; None: ``DEFAULT_FROM_EMAIL``.
    from_email: str | None = None
    #: The mailer alias (``MAILERS``, Django 6.1) the email goes through.
    mailer: str | None = None
    #: The name the email and pages give the site; None: the link's host.
    site_name: str | None = None
    #: Requests per email address; None: no limit.
    rate_limit_email: Rate | None = Rate(3, 3600)
    #: Requests per client IP; None: no limit.
    rate_limit_ip: Rate | None = Rate(20, 3600)
    #: The ``CACHES`` alias holding the rate-limit counters.
    cache: str = "default"
    #: ``request -> str``: the client IP for the per-IP limit; None:
    #: ``REMOTE_ADDR``.
    client_ip: Callable[[Any], str] | None = None
    #: ``"auto"``, ``"tasks"`` or ``"thread"`` (see ``delivery.py``).
    delivery: str = "auto"
    #: The per-IP limit counts an IPv6 client by this prefix length: one
    #: host usually holds a whole /64 and can rotate addresses within it.
    ipv6_prefix: int = 64


def _name(field: str) -> str:
    return PREFIX + field.upper()


def _url_template(value: Any, name: str) -> str | None:
    if value is None:
        return None
    check_url_template(value, name)
    return str(value)


def _base_url(value: Any, name: str) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise ConfigurationError(
            f"{name} must be an http(s) URL with a host and no query, such as "
            f"'https://www.example.com', got {value!r}."
        )
    return cast(str, value.rstrip("/"))


def parse_rate(value: Any, name: str) -> Rate | None:
    """``"3/h"``, ``"20/15m"``, ``"100/d"`` -> :class:`Rate`; None stays None."""
    if value is None or isinstance(value, Rate):
        return value
    match = _RATE.match(value) if isinstance(value, str) else None
    if match is None or int(match[1]) < 1 or match[2] == "0":
        raise ConfigurationError(
            f"{name} must be a rate such as '3/h', '20/15m' or '100/d' "
            f"(requests / period in s, m, h or d), or None for no limit; got "
            f"{value!r}."
        )
    return Rate(int(match[1]), int(match[2] or 1) * _UNITS[match[3]])


def _callable(value: Any, name: str) -> Callable[[Any], str] | None:
    if value is None or callable(value):
        return cast(Callable[[Any], str] | None, value)
    if isinstance(value, str):
        try:
            found = import_string(value)
        except ImportError as exc:
            raise ConfigurationError(
                f"{name} names {value!r}, which cannot be imported: {exc}"
            ) from exc
        if callable(found):
            return cast(Callable[[Any], str], found)
    raise ConfigurationError(
        f"{name} must be a dotted path to a function taking the request and "
        f"returning the client IP, or None; got {value!r}."
    )


def _delivery(value: Any, name: str) -> str:
    if value in DELIVERY_MODES:
        return str(value)
    raise ConfigurationError(
        f"{name} must be one of {', '.join(map(repr, DELIVERY_MODES))}; got {value!r}."
    )


def _ipv6_prefix(value: Any, name: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 128:
        return value
    raise ConfigurationError(
        f"{name} must be an IPv6 prefix length from 1 to 128 (64 counts each "
        f"/64 network as one client, 128 each address); got {value!r}."
    )


_CHECKS: dict[str, Check] = {
    "url_template": _url_template,
    "base_url": _base_url,
    "from_email": optional_nonempty_text,
    "mailer": optional_nonempty_text,
    "site_name": optional_nonempty_text,
    "rate_limit_email": parse_rate,
    "rate_limit_ip": parse_rate,
    "cache": nonempty_text,
    "client_ip": _callable,
    "delivery": _delivery,
    "ipv6_prefix": _ipv6_prefix,
}


def get_settings() -> ResetSettings:
    """Read and check every ``HYPERMAIL_PASSWORD_RESET_*`` setting now."""
    return read_settings(PREFIX, ResetSettings(), _CHECKS)


def setting_names() -> list[str]:
    """Every setting this module reads, for documentation and tests."""
    return [_name(field) for field in _CHECKS]


def check_url_template(value: Any, where: str) -> None:
    """Raise ``ConfigurationError`` unless ``value`` is a usable link template:
    ``{uid}`` and ``{token}`` in an http(s) URL or a path starting with ``/``."""
    if not isinstance(value, str) or "{uid}" not in value or "{token}" not in value:
        raise ConfigurationError(
            f"{where} must be a URL containing both '{{uid}}' and '{{token}}', "
            f"such as 'https://app.example.com/reset/{{uid}}/{{token}}/'; got "
            f"{value!r}."
        )
    parts = urlsplit(value)
    absolute = parts.scheme in ("http", "https") and bool(parts.netloc)
    relative = not parts.scheme and not parts.netloc and value.startswith("/")
    if not (absolute or relative):
        raise ConfigurationError(
            f"{where} must be an http(s) URL with a host, or a path starting with "
            f"'/' (its scheme and host then come from "
            f"{_name('base_url')} or the request); got {value!r}."
        )
