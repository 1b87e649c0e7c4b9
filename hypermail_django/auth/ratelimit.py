"""Rate limits on reset requests: per email address and per client IP.

Counters live in Django's cache (``HYPERMAIL_PASSWORD_RESET_CACHE``), so every
web process shares them when the cache is shared (Redis, Memcached, the
database cache; LocMemCache counts per process). Each limit is a window that
opens with the first request and lasts the rate's period. Both counters are
bumped on every request, whatever the outcome, so a request costs the same
work for any address. A caller past a limit gets the same answer as anyone
else: the limit only decides whether an email is sent.

The keys hold an HMAC of the address or IP (keyed by ``SECRET_KEY``), so the
cache never holds email addresses.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from typing import Any

from django.core.cache import InvalidCacheBackendError, caches
from django.utils.crypto import salted_hmac

from ..conf.password_reset import Rate, ResetSettings, get_settings
from ..exceptions import ConfigurationError

KEY_PREFIX = "hypermail:password-reset"
_KEY_SALT = "hypermail_django.auth.ratelimit"


def normalize_email(email: str) -> str:
    """One spelling per mailbox for counting: NFKC, case-folded, stripped
    (the comparison Django's ``PasswordResetForm`` makes)."""
    return unicodedata.normalize("NFKC", email).casefold().strip()


def client_ip(request: Any, conf: ResetSettings | None = None) -> str:
    """The client IP the per-IP limit counts: ``REMOTE_ADDR``, or what
    ``HYPERMAIL_PASSWORD_RESET_CLIENT_IP`` returns (behind a proxy)."""
    conf = conf or get_settings()
    if conf.client_ip is not None:
        return str(conf.client_ip(request) or "unknown")
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def counted_client(ip: str, ipv6_prefix: int = 64) -> str:
    """What the per-IP limit counts: an IPv4 address as it is, an IPv6 one by
    its network (``ipv6_prefix``, /64 by default, as django-ratelimit does),
    so rotating addresses within one network do not escape the limit."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return ip  # "unknown", or whatever a custom client_ip returned
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        network = ipaddress.IPv6Network((address, ipv6_prefix), strict=False)
        return str(network)
    return str(address)


def exceeded_limits(
    request: Any, email: str, conf: ResetSettings | None = None
) -> list[str]:
    """Count this request; return the limits it exceeds (empty: none).

    Both counters are always bumped, in the same order.
    """
    conf = conf or get_settings()
    try:
        cache = caches[conf.cache]
    except InvalidCacheBackendError as exc:
        raise ConfigurationError(
            f"HYPERMAIL_PASSWORD_RESET_CACHE is {conf.cache!r}, which is not a "
            f"CACHES alias: {exc}"
        ) from exc
    exceeded = []
    if not _hit(cache, "email", normalize_email(email), conf.rate_limit_email):
        exceeded.append("email")
    client = counted_client(client_ip(request, conf), conf.ipv6_prefix)
    if not _hit(cache, "ip", client, conf.rate_limit_ip):
        exceeded.append("ip")
    return exceeded


def _hit(cache: Any, scope: str, value: str, rate: Rate | None) -> bool:
    """Count one request against ``rate``; False once it is exceeded."""
    if rate is None:
        return True
    digest = salted_hmac(_KEY_SALT, value, algorithm="sha256").hexdigest()
    key = f"{KEY_PREFIX}:{scope}:{digest}"
    cache.add(key, 0, timeout=rate.seconds)
    try:
        count = cache.incr(key)
    except ValueError:  # the window expired between add() and incr()
        cache.add(key, 1, timeout=rate.seconds)
        count = 1
    return bool(count <= rate.count)
