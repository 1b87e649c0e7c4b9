"""Shared by the delivery-log tests: read back what the log wrote."""

from __future__ import annotations

from typing import Any


def outcomes(delivery: Any) -> dict[str, tuple[str, str, int | None]]:
    """``{address: (kind, status, code)}`` of a delivery's recipients."""
    return {r.address: (r.kind, r.status, r.code) for r in delivery.recipients.all()}
