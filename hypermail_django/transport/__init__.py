"""The SMTP transport: pooled connections, one retry policy, per-recipient results.

Knows nothing of Django: it takes a :class:`TransportConfig` and :class:`Envelope`
objects and returns :class:`DeliveryStatus` objects.
"""

from .config import TransportConfig
from .envelope import Envelope
from .pool import Lease, close_all_pools, get_pool, leased
from .results import DeliveryStatus, RecipientStatus
from .sender import send_envelope

__all__ = [
    "DeliveryStatus",
    "Envelope",
    "Lease",
    "RecipientStatus",
    "TransportConfig",
    "close_all_pools",
    "get_pool",
    "leased",
    "send_envelope",
]
