"""Email backends: ``FluxMailBackend`` for production SMTP; ``MemoryBackend`` and
``ConsoleBackend`` for tests and development, which prepare messages the same way."""

from .console import ConsoleBackend
from .memory import MemoryBackend
from .router import RoutingBackend
from .smtp import FluxMailBackend

__all__ = ["ConsoleBackend", "FluxMailBackend", "MemoryBackend", "RoutingBackend"]
