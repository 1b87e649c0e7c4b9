"""``manage.py mailcheck``: is each mailer's SMTP server usable? Sends no mail.

For load balancers and deploy pipelines: the answer ``sendtestemail`` gives,
without sending anything, within a deadline, and as JSON on request. Exit
status 0 when every mailer checked is healthy, 1 when one is unhealthy (the
server is unreachable, refuses TLS or the credentials, or is too slow), 2 when
one is misconfigured (unknown alias, unusable option, not a FluxMailBackend).
See ``docs/health-checks.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...conf.mailers import MailerSpec, configured_mailers, get_mailer_spec
from ...exceptions import ConfigurationError
from ...health import check_mailer
from ...outbound.dkim import DNSCheck, check_dns
from ...routing.checks import is_router
from ...routing.member_probe import MemberReport, probe_router
from ...transport.auth_hints import auth_fix
from ...transport.probe import ProbeResult

HEALTHY, UNHEALTHY, MISCONFIGURED, SKIPPED = (
    "healthy",
    "unhealthy",
    "misconfigured",
    "skipped",
)
EXIT_CODES = {HEALTHY: 0, SKIPPED: 0, UNHEALTHY: 1, MISCONFIGURED: 2}


@dataclass
class MailerReport:
    """The outcome for one mailer: a probe result, or why there is none."""

    alias: str
    backend: str | None
    status: str
    result: ProbeResult | None = None
    error: ConfigurationError | None = None
    dkim: list[DNSCheck] = field(default_factory=list)
    members: list[MemberReport] | None = None
    """For a RoutingBackend: each member's probe."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "alias": self.alias,
            "backend": self.backend,
            "status": self.status,
        }
        if self.members is not None:
            members = [member.to_dict() for member in self.members]
            return data | {"ok": self.status == HEALTHY, "members": members}
        if self.dkim:
            data["dkim"] = [check.to_dict() for check in self.dkim]
        if self.result is not None:
            return data | self.result.to_dict() | _auth_dict(self.result)
        error = self.error
        return data | {
            # Not checked is neither healthy nor not: null for a skipped mailer.
            "ok": None if self.status == SKIPPED else False,
            "error": None
            if error is None
            else {"step": None, "code": error.code, "message": error.message},
        }


class Command(BaseCommand):
    help = (
        "Check each mailer's SMTP server: connect, EHLO, STARTTLS or TLS, AUTH, "
        "NOOP, QUIT, with the latency of each step, and that the DNS publishes "
        "the public key of each DKIM key. Sends no mail. Exit status: "
        "0 healthy, 1 unhealthy, 2 misconfigured."
    )
    # Our own checks decide the exit status (2 for a misconfigured mailer); the
    # system checks would stop the command with status 1 before it ran.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--using",
            metavar="ALIAS",
            help="The MAILERS alias to check (default: the default mailer).",
        )
        which.add_argument(
            "--all",
            action="store_true",
            help="Check every mailer in MAILERS (mailers that are not a "
            "FluxMailBackend are listed as skipped).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON object per mailer, one per line.",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            metavar="SECONDS",
            help="Deadline for each mailer's whole check (default: the mailer's "
            "timeout option).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        timeout = options["timeout"]
        if timeout is not None and not timeout > 0:
            raise CommandError(
                f"--timeout must be more than 0 seconds, got {timeout:g}.",
                returncode=2,
            )
        reports = self._check(options["using"], options["all"], timeout)
        for number, report in enumerate(reports):
            if options["json"]:
                self.stdout.write(json.dumps(report.to_dict()))
                continue
            if number:
                self.stdout.write("")
            self._print(report)
        status = max((r.status for r in reports), key=EXIT_CODES.__getitem__)
        if all(r.status == SKIPPED for r in reports):
            raise CommandError(
                "No mailer to check: none is a FluxMailBackend.", returncode=2
            )
        if EXIT_CODES[status]:
            failing = [repr(r.alias) for r in reports if r.status == status]
            raise CommandError(
                f"{len(failing)} mailer(s) {status}: {', '.join(failing)}",
                returncode=EXIT_CODES[status],
            )

    def _check(
        self, using: str | None, every: bool, timeout: float | None
    ) -> list[MailerReport]:
        if not every:
            try:
                spec = get_mailer_spec(using)
            except ConfigurationError as error:
                alias = using or "default"
                return [MailerReport(alias, None, MISCONFIGURED, error=error)]
            return [self._check_one(spec, timeout, skip_others=False)]
        return [
            self._check_one(spec, timeout, skip_others=True)
            for spec in configured_mailers()
        ]

    def _check_one(
        self, spec: MailerSpec, timeout: float | None, *, skip_others: bool
    ) -> MailerReport:
        if not spec.legacy and is_router(spec):
            return _check_router(spec, timeout)
        try:
            result = check_mailer(spec, timeout=timeout)
        except ConfigurationError as error:
            skipped = skip_others and error.code == "unsupported_backend"
            status = SKIPPED if skipped else MISCONFIGURED
            return MailerReport(spec.alias, spec.backend, status, error=error)
        dkim = [check_dns(key, timeout=timeout or 5) for key in spec.build().dkim or ()]
        ok = result.ok and all(check.ok for check in dkim)
        status = HEALTHY if ok else UNHEALTHY
        return MailerReport(spec.alias, spec.backend, status, result=result, dkim=dkim)

    # -- human output ---------------------------------------------------------

    def _print(self, report: MailerReport) -> None:
        write = self.stdout.write
        result = report.result
        backend = f" ({report.backend})" if report.backend else ""
        if report.members is not None:
            style = self.style.SUCCESS if report.status == HEALTHY else self.style.ERROR
            write(f"Mailer {report.alias!r}{backend}: routes to")
            for member in report.members:
                detail = f": {member.error}" if member.error else ""
                write(f"  {member.alias:<12} {member.status}{detail}")
            write(style(f"  {report.status}: at least one member must be healthy"))
            return
        if result is None:
            write(f"Mailer {report.alias!r}{backend}")
            assert report.error is not None
            style = self.style.WARNING if report.status == SKIPPED else self.style.ERROR
            write(style(f"  {report.status}: {report.error.message}"))
            return
        security = {"plain": "no TLS", "starttls": "STARTTLS", "ssl": "implicit TLS"}
        login = f", user {result.username!r}" if result.username else ", no AUTH"
        write(
            f"Mailer {report.alias!r}{backend}: {result.relay}:{result.port}, "
            f"{security[result.security]}{login}, deadline {result.timeout:g} s"
        )
        for step in result.steps:
            mark = "" if step.ok else self.style.ERROR("FAILED ")
            line = f"  {step.name:<9} {step.latency_ms:>8.2f} ms  {mark}"
            write(f"{line}{step.reply or ''}".rstrip())
        for label, value in _details(result):
            write(f"  {label:<13} {value}")
        for check in report.dkim:
            style = {"match": self.style.SUCCESS, "unreachable": self.style.WARNING}
            line = f"  dkim {check.selector}._domainkey.{check.domain}: {check.status}"
            write(style.get(check.status, self.style.ERROR)(line))
            write(f"    {check.detail}")
        for warning in result.warnings:
            write(self.style.WARNING(f"  warning: {warning}"))
        fix = _fix(result)
        if fix:
            write(self.style.WARNING(f"  fix: {fix}"))
        if result.error is None and report.status == UNHEALTHY:
            write(self.style.ERROR("  unhealthy: the DKIM public key in DNS is wrong"))
        elif result.error is None:
            write(self.style.SUCCESS(f"  healthy in {result.latency_ms} ms"))
        else:
            write(
                self.style.ERROR(
                    f"  unhealthy after {result.latency_ms} ms: "
                    f"{result.error.message} [{result.error.code}]"
                )
            )


def _check_router(spec: MailerSpec, timeout: float | None) -> MailerReport:
    """A router is healthy when at least one of its members is."""
    try:
        members = probe_router(spec, timeout)
    except ConfigurationError as error:
        return MailerReport(spec.alias, spec.backend, MISCONFIGURED, error=error)
    healthy = any(member.status == HEALTHY for member in members)
    status = HEALTHY if healthy else UNHEALTHY
    return MailerReport(spec.alias, spec.backend, status, members=members)


def _auth_dict(result: ProbeResult) -> dict[str, Any]:
    """``auth`` (mechanism, token fetched or cached, provider time) and ``fix``
    (what to do about a known AUTH refusal) for the JSON output."""
    report = result.auth
    auth = None
    if report is not None:
        auth = {
            "mechanism": report.mechanism,
            "token": None
            if report.token_fetched is None
            else "fetched"
            if report.token_fetched
            else "cached",
            "provider_ms": None
            if report.provider_seconds is None
            else round(report.provider_seconds * 1000, 2),
        }
    return {"auth": auth, "fix": _fix(result)}


def _fix(result: ProbeResult) -> str | None:
    error = result.error
    if error is None or result.failed_step != "auth":
        return None
    return auth_fix(error.smtp_code, error.smtp_error)


def _details(result: ProbeResult) -> list[tuple[str, str]]:
    """The lines under the steps: greeting, capabilities, TLS, certificate."""
    details = []
    report = result.auth
    if report is not None:
        line = (
            "password (auto)"
            if report.mechanism == "auto"
            else report.mechanism.upper()
        )
        if report.token_fetched is not None:
            line += (
                f", token fetched in {report.provider_seconds * 1000:.0f} ms"
                if report.token_fetched
                else ", token from the cache"
            )
        details.append(("auth", line))
    if result.greeting:
        details.append(("greeting", result.greeting))
    caps = result.capabilities
    if caps is not None:
        names = []
        for name in caps.extensions:
            if name == "SIZE" and caps.size:
                names.append(f"SIZE {caps.size}")
            elif name == "AUTH" and caps.auth:
                names.append(f"AUTH {' '.join(caps.auth)}")
            else:
                names.append(name)
        if caps.starttls and "STARTTLS" not in names:
            names.append("STARTTLS")
        details.append(("capabilities", ", ".join(names) or "(none: HELO only)"))
    tls = result.tls
    if tls is not None:
        details.append(("tls", f"{tls.version} {tls.cipher} ({tls.bits} bits)"))
        if tls.cert_not_after is not None:
            issuer = f", issued by {tls.cert_issuer}" if tls.cert_issuer else ""
            details.append(
                (
                    "certificate",
                    f"{tls.cert_subject}{issuer}, expires "
                    f"{tls.cert_not_after:%Y-%m-%d} ({tls.cert_days_left} days)",
                )
            )
    return details
