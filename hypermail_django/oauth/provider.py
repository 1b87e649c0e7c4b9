"""What the built-in token providers share: value equality, a safe repr, and
HTTP clients that trust what SMTP trusts."""

from __future__ import annotations

import ssl
import threading
from typing import Any, ClassVar

from ..transport.token_cache import TokenError


class Provider:
    """A token provider configured by keyword arguments.

    Subclasses list their arguments in ``fields`` and the secret ones in
    ``secret_fields`` (shown as ``***`` by ``repr``, scrubbed from errors).
    Equal arguments make equal, equally hashed providers: the transport keys
    its connection pools and its token cache on them.
    """

    fields: ClassVar[tuple[str, ...]] = ()
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def _identity(self) -> tuple[Any, ...]:
        return tuple(_frozen(getattr(self, name)) for name in self.fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Provider)
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((type(self), self._identity()))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={'***' if name in self.secret_fields else repr(value)}"
            for name in self.fields
            if (value := getattr(self, name)) is not None
        )
        return f"{type(self).__name__}({shown})"

    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from any error message."""
        return tuple(
            value
            for name in self.secret_fields
            if isinstance(value := getattr(self, name), str) and value
        )

    def __call__(self) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError


def _frozen(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def ssl_context() -> ssl.SSLContext:
    """The system trust store, ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured: the
    same one SMTP connections verify servers against."""
    return ssl.create_default_context()


def requests_session() -> Any:
    """A ``requests.Session`` (MSAL's and google-auth's HTTP client) verifying
    against :func:`ssl_context`, instead of requests' own bundle (``certifi``),
    so ``SSL_CERT_FILE`` works for token endpoints as it does for SMTP.
    ``REQUESTS_CA_BUNDLE``, when set, is trusted as well, as requests documents.
    """
    try:
        import requests
        from requests.adapters import HTTPAdapter
    except ImportError as exc:  # both extras depend on it
        raise TokenError(f"requests is not installed: {exc}") from None

    class TrustStoreAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            kwargs["ssl_context"] = ssl_context()
            super().init_poolmanager(*args, **kwargs)

        def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["ssl_context"] = ssl_context()
            return super().proxy_manager_for(*args, **kwargs)

    session = requests.Session()
    session.mount("https://", TrustStoreAdapter())
    return session


def error_from_response(status: int | None, body: Any, where: str) -> TokenError:
    """An RFC 6749 section 5.2 error response as a :class:`TokenError`: its
    ``error`` and ``error_description`` (never the request's secrets); transient
    for 5xx, 429 and the ``temporarily_unavailable``/``server_error`` codes."""
    error = description = None
    if isinstance(body, dict):
        error = body.get("error")
        description = body.get("error_description")
    transient = (status is not None and (status >= 500 or status == 429)) or error in (
        "temporarily_unavailable",
        "server_error",
    )
    parts = [f"HTTP {status}" if status else None, error, description]
    detail = ": ".join(str(p) for p in parts if p)
    return TokenError(
        f"{where} refused the token request ({detail})", transient=transient
    )
