"""Bulk sending: ``send_bulk`` and ``asend_bulk``."""

from .account import BulkResult
from .sending import send_bulk

__all__ = ["BulkResult", "send_bulk"]
