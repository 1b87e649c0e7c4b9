"""The health probe's report: each step, the server's capabilities, the TLS
session and certificate, and the outcome.

Plain data, built by :mod:`.probe_runner` and read by ``test_connection()``,
``manage.py mailcheck`` and monitoring: it carries no password, so it can be
printed, logged or returned as JSON (:meth:`ProbeResult.to_dict`).
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass, field
from typing import Any

from .errors import SendError

#: A certificate expiring in fewer days than this is reported with a warning.
CERT_WARNING_DAYS = 14


@dataclass(frozen=True)
class ProbeStep:
    """One step of the dialogue: how long it took and the server's reply."""

    name: str
    """``connect``, ``ehlo``, ``starttls``, ``auth``, ``noop`` or ``quit``."""
    ok: bool
    latency_ms: float
    reply: str | None = None
    """The first line of the server's reply (code and text), when it got one."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "ok": self.ok,
            "latency_ms": self.latency_ms,
            "reply": self.reply,
        }


@dataclass(frozen=True)
class Capabilities:
    """The ESMTP extensions the server advertised in its last EHLO reply."""

    size: int | None
    """The largest message the server accepts, in bytes (None: not announced,
    0: no limit)."""
    pipelining: bool
    chunking: bool
    """RFC 3030 CHUNKING (BDAT), which the backend uses when offered."""
    smtputf8: bool
    eightbitmime: bool
    starttls: bool
    """Whether the server offered STARTTLS on this connection (before TLS)."""
    auth: tuple[str, ...]
    """The AUTH mechanisms offered, upper-case (empty: no AUTH)."""
    extensions: tuple[str, ...]
    """Every extension keyword advertised, upper-case, in the server's order."""

    @classmethod
    def from_features(
        cls, features: dict[str, str], *, starttls_offered: bool
    ) -> Capabilities:
        size = features.get("size", "").strip()
        return cls(
            size=int(size) if size.isdigit() else None,
            pipelining="pipelining" in features,
            chunking="chunking" in features,
            smtputf8="smtputf8" in features,
            eightbitmime="8bitmime" in features,
            starttls=starttls_offered or "starttls" in features,
            auth=tuple(m.upper() for m in features.get("auth", "").split()),
            extensions=tuple(name.upper() for name in features),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "pipelining": self.pipelining,
            "chunking": self.chunking,
            "smtputf8": self.smtputf8,
            "8bitmime": self.eightbitmime,
            "starttls": self.starttls,
            "auth": list(self.auth),
            "extensions": list(self.extensions),
        }


@dataclass(frozen=True)
class TLSInfo:
    """The negotiated TLS session and the server's certificate."""

    version: str | None
    cipher: str | None
    bits: int | None
    cert_subject: str | None = None
    """The certificate's common name, else its first DNS/IP subjectAltName."""
    cert_issuer: str | None = None
    cert_not_after: datetime.datetime | None = None
    cert_days_left: int | None = None
    """Whole days until the certificate expires (None: not verified, so not
    inspected)."""

    @classmethod
    def from_socket(cls, sock: object, *, now: float) -> TLSInfo | None:
        """Describe ``sock``'s session; None when it is not a TLS socket."""
        if not isinstance(sock, ssl.SSLSocket):
            return None
        cipher = sock.cipher()
        # A dict only when the certificate was verified: unverified ones are
        # not decoded by the ssl module, and are not worth reporting on.
        cert: dict[str, Any] = dict(sock.getpeercert() or {})
        not_after = cert.get("notAfter")
        expires = ssl.cert_time_to_seconds(not_after) if not_after else None
        return cls(
            version=sock.version(),
            cipher=cipher[0] if cipher else None,
            bits=cipher[2] if cipher else None,
            cert_subject=_name_field(cert.get("subject", ()), "commonName")
            or _first_san(cert.get("subjectAltName", ())),
            cert_issuer=_name_field(
                cert.get("issuer", ()),
                "commonName",
                "organizationName",
                "organizationalUnitName",
            ),
            cert_not_after=None
            if expires is None
            else datetime.datetime.fromtimestamp(expires, tz=datetime.timezone.utc),
            cert_days_left=None if expires is None else int((expires - now) // 86400),
        )

    def to_dict(self) -> dict[str, Any]:
        not_after = self.cert_not_after
        return {
            "version": self.version,
            "cipher": self.cipher,
            "bits": self.bits,
            "cert_subject": self.cert_subject,
            "cert_issuer": self.cert_issuer,
            "cert_not_after": (
                not_after.strftime("%Y-%m-%dT%H:%M:%SZ") if not_after else None
            ),
            "cert_days_left": self.cert_days_left,
        }


@dataclass
class ProbeResult:
    """What a probe found. ``ok`` when every step succeeded.

    Carries no password: a result can be printed, logged or returned as JSON.
    """

    relay: str
    port: int
    security: str
    """``"plain"``, ``"starttls"`` or ``"ssl"`` (implicit TLS)."""
    username: str | None
    """The user the probe logged in as (None: no AUTH configured)."""
    timeout: float
    steps: list[ProbeStep] = field(default_factory=list)
    greeting: str | None = None
    capabilities: Capabilities | None = None
    tls: TLSInfo | None = None
    error: SendError | None = None
    failed_step: str | None = None
    warnings: list[str] = field(default_factory=list)
    latency_ms: int = 0
    """The whole probe, connect to QUIT (or to the failure), in milliseconds."""
    auth: Any = None
    """How AUTH went (a :class:`.sasl.AuthReport`: mechanism, token fetched or
    cached, provider time), when it succeeded."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (the schema of ``docs/health-checks.md``)."""
        error = self.error
        return {
            "ok": self.ok,
            "relay": self.relay,
            "port": self.port,
            "latency_ms": self.latency_ms,
            "security": self.security,
            "username": self.username,
            "timeout": self.timeout,
            "greeting": self.greeting,
            "steps": [step.to_dict() for step in self.steps],
            "capabilities": self.capabilities.to_dict() if self.capabilities else None,
            "tls": self.tls.to_dict() if self.tls else None,
            "warnings": list(self.warnings),
            "error": None
            if error is None
            else {
                "step": self.failed_step,
                "code": error.code,
                "message": error.message,
                "smtp_code": error.smtp_code,
                "transient": error.transient,
            },
        }


def _name_field(name: Any, *keys: str) -> str | None:
    """The first of ``keys`` present in a certificate name decoded by ``ssl``."""
    fields = {key: value for rdn in name for key, value in rdn}
    return next((str(fields[key]) for key in keys if key in fields), None)


def _first_san(alt_names: Any) -> str | None:
    for kind, value in alt_names:
        if kind in ("DNS", "IP Address"):
            return str(value)
    return None
