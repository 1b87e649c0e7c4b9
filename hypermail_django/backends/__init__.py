"""Email backends: ``FluxMailBackend`` for production SMTP."""

from .smtp import FluxMailBackend

__all__ = ["FluxMailBackend"]
