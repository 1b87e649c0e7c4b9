"""The health probe's names, importable from here as before: the runner is
:mod:`.probe_runner`, the report :mod:`.probe_report`."""

from __future__ import annotations

from .errors import ProbeFailed
from .probe_report import (
    CERT_WARNING_DAYS,
    Capabilities,
    ProbeResult,
    ProbeStep,
    TLSInfo,
)
from .probe_runner import probe

__all__ = [
    "CERT_WARNING_DAYS",
    "Capabilities",
    "ProbeFailed",
    "ProbeResult",
    "ProbeStep",
    "TLSInfo",
    "probe",
]
