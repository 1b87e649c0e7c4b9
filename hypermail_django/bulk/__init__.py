"""Bulk sending: ``send_bulk`` and ``asend_bulk``."""

from .account import BulkResult
from .async_bulk_sender import asend_bulk
from .bulk_sender import send_bulk

__all__ = ["BulkResult", "asend_bulk", "send_bulk"]
