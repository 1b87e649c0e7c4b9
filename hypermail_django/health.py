"""``test_connection()``: prove a mailer can reach its server, sending nothing.

FluxMail's ``test_connection()`` for Django mailers. It resolves a mailer the
way Django does (a ``MAILERS`` alias on 6.1, else ``EMAIL_BACKEND`` and the
``EMAIL_*`` settings), and probes its server with
:func:`hypermail_django.transport.probe.probe`: connect, EHLO, STARTTLS or TLS,
AUTH, NOOP, QUIT. ``manage.py mailcheck`` is the same check on the command line.
"""

from __future__ import annotations

from typing import Any

from .conf.mailers import MailerSpec, get_mailer_spec
from .exceptions import ConfigurationError
from .routing.checks import is_router
from .transport.failures import probe_failed
from .transport.probe import ProbeFailed, ProbeResult, probe
from .transport.sasl import TokenRefused

__all__ = ["ProbeFailed", "check_mailer", "test_connection"]


def check_mailer(spec: MailerSpec, *, timeout: float | None = None) -> ProbeResult:
    """Probe the server of the mailer ``spec`` describes; never send mail.

    Raises ConfigurationError when the mailer is not a FluxMailBackend
    (``unsupported_backend``) or its options are unusable (``invalid_config``,
    ``no_relay``). A server problem is not raised: it is in the result.
    """
    config = spec.build().transport_config
    result = probe(config, timeout=timeout)
    if isinstance(result.error, TokenRefused):
        # As sending does: the refused token is gone from the cache; sign in
        # once more, on a new connection, with a new one.
        result = probe(config, timeout=timeout)
        if isinstance(result.error, TokenRefused):
            result.error.transient = False  # refused twice: permanent
    return result


def test_connection(
    using: str | None = None, *, timeout: float | None = None
) -> dict[str, Any]:
    """Open, secure, authenticate and close a connection; send no email.

    ``using`` is a ``MAILERS`` alias (None: the default mailer). ``timeout``
    bounds the whole check, in seconds (default: the mailer's ``timeout``).
    A ``RoutingBackend`` alias checks every member: healthy when one is.

    Returns ``{"ok": True, "relay": str, "port": int, "latency_ms": int, ...}``
    (the full report of ``docs/health-checks.md``). Raises
    :class:`ProbeFailed` -- a ``FluxMailException`` with code
    ``"connection_failed"``, the cause's code in ``.reason`` and the report in
    ``.result`` -- when the server cannot be reached, refuses TLS or the
    credentials, or does not answer in time; ``ConfigurationError`` when the
    mailer is unknown (``unknown_mailer``), not a FluxMailBackend
    (``unsupported_backend``) or misconfigured.
    """
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be more than 0 seconds, got {timeout!r}")
    spec = get_mailer_spec(using)
    if not spec.legacy and is_router(spec):
        return _test_router(spec, timeout)
    result = check_mailer(spec, timeout=timeout)
    if not result.ok:
        raise probe_failed(result)
    return result.to_dict()


def _test_router(spec: MailerSpec, timeout: float | None) -> dict[str, Any]:
    """A router can send when one member can: report each member; when none
    can, raise the first unhealthy member's failure, with every member's
    report in ``.members``."""
    from .routing.member_probe import probe_router

    members = probe_router(spec, timeout)
    reports = [member.to_dict() for member in members]
    healthy = [m.latency_ms or 0 for m in members if m.status == "healthy"]
    if healthy:
        return {"ok": True, "latency_ms": min(healthy), "members": reports}
    failed = next((m.result for m in members if m.status == "unhealthy"), None)
    if failed is None:
        raise ConfigurationError(
            f"{spec.label} has no member that can be checked: "
            + "; ".join(f"{m.alias}: {m.error}" for m in members),
            code="invalid_config",
        )
    error = probe_failed(failed)
    error.members = reports
    raise error


# A function named test_* must not be collected by pytest when a test module
# imports it.
test_connection.__test__ = False  # type: ignore[attr-defined]
