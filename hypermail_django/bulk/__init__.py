"""Bulk sending: ``send_bulk`` and ``asend_bulk``."""

from .account import BulkResult
from .async_sending import asend_bulk
from .sending import send_bulk

__all__ = ["BulkResult", "asend_bulk", "send_bulk"]
