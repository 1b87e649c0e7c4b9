"""The health probe of a router: probe each member, report them together.

Used by ``manage.py mailcheck``. A member whose probe passes counts as a
passed send for the router's health (its cool-down ends), so with a shared
``limits_cache`` a deploy check brings a repaired relay back at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..conf.mailers import MailerSpec, get_mailer_spec
from ..exceptions import ConfigurationError
from ..transport.probe import ProbeResult


@dataclass
class MemberReport:
    alias: str
    status: str  # healthy, unhealthy, misconfigured, skipped
    latency_ms: int | None = None
    error: str | None = None
    cooling_until: float | None = None
    result: ProbeResult | None = field(default=None, repr=False, compare=False)
    """The member's full probe report (None when it was not probed)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "error": self.error,
            "cooling_until": self.cooling_until,
        }


def probe_router(spec: MailerSpec, timeout: float | None) -> list[MemberReport]:
    """Probe every member of the router ``spec`` describes; send no mail.

    Raises ``ConfigurationError`` when the router itself cannot be built.
    """
    from ..backends.router import RoutingBackend
    from ..health import check_mailer

    router = RoutingBackend(alias=spec.alias, **spec.options)
    router.check_members()
    cooling = router.state.cooling()
    reports = []
    for alias in router.routing.mailers:
        member = get_mailer_spec(alias)
        try:
            result = check_mailer(member, timeout=timeout)
        except ConfigurationError as error:
            skipped = error.code == "unsupported_backend"
            status = "skipped" if skipped else "misconfigured"
            reports.append(MemberReport(alias, status, error=error.message))
            continue
        if result.ok:
            router.state.succeeded(alias)
            reports.append(
                MemberReport(alias, "healthy", result.latency_ms, result=result)
            )
        else:
            message = result.error.message if result.error else "probe failed"
            reports.append(
                MemberReport(
                    alias,
                    "unhealthy",
                    result.latency_ms,
                    message,
                    cooling.get(alias),
                    result,
                )
            )
    return reports
