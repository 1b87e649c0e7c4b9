"""Google Workspace: a service account with domain-wide delegation, on google-auth.

The service account signs a JWT naming the mailbox it acts for (``subject``)
and exchanges it at Google's token URI for a token with the
``https://mail.google.com/`` scope. Needs ``hypermail-django[google]``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..transport.token_cache import AccessToken, TokenError
from .provider import Provider, requests_session

SCOPE = "https://mail.google.com/"


class GoogleServiceAccount(Provider):
    """Tokens for Gmail SMTP from a service account key (its JSON as a dict or
    string, or the path of the file), acting for the mailbox ``subject``."""

    fields = ("info_or_file", "subject", "scope")
    secret_fields = ("info_or_file",)

    def __init__(
        self,
        info_or_file: Mapping[str, Any] | str | Path,
        subject: str,
        *,
        scope: str = SCOPE,
        timeout: float = 30.0,
    ) -> None:
        super().__init__()
        if isinstance(info_or_file, Path):
            info_or_file = str(info_or_file)
        self.info_or_file: Any = (
            dict(info_or_file) if isinstance(info_or_file, Mapping) else info_or_file
        )
        self.subject = subject
        self.scope = scope
        self.timeout = timeout
        self._credentials: Any = None

    def __repr__(self) -> str:
        # A file path is no secret and helps; key material is.
        source = self.info_or_file
        shown = (
            repr(source) if isinstance(source, str) and not _is_json(source) else "***"
        )
        return f"GoogleServiceAccount({shown}, subject={self.subject!r})"

    def secrets(self) -> tuple[str, ...]:
        info = self._info_if_inline()
        key = info.get("private_key") if info else None
        return (key,) if isinstance(key, str) else ()

    def _info_if_inline(self) -> dict[str, Any] | None:
        source = self.info_or_file
        if isinstance(source, dict):
            return source
        if isinstance(source, str) and _is_json(source):
            value = json.loads(source)
            return value if isinstance(value, dict) else None
        return None

    def _make_credentials(self) -> Any:
        try:
            from google.oauth2 import service_account
        except ImportError:
            raise TokenError(
                "GoogleServiceAccount needs google-auth: pip install "
                "'hypermail-django[google]'"
            ) from None
        info = self._info_if_inline()
        try:
            if info is None:
                info = json.loads(Path(self.info_or_file).read_text())
            return service_account.Credentials.from_service_account_info(
                info, scopes=[self.scope], subject=self.subject
            )
        except (OSError, ValueError, KeyError) as exc:
            # Never str(exc) of a parse error: it may quote the key.
            raise TokenError(
                f"the service account key could not be loaded ({type(exc).__name__})"
            ) from None

    def __call__(self) -> AccessToken:
        from google.auth import exceptions
        from google.auth.transport.requests import Request

        with self._lock:
            if self._credentials is None:
                self._credentials = self._make_credentials()
            credentials = self._credentials
            try:
                credentials.refresh(Request(requests_session()))
            except exceptions.RefreshError as exc:
                retryable = bool(getattr(exc, "retryable", False))
                raise TokenError(
                    f"Google refused the token request for {self.subject}: "
                    f"{_refresh_reason(exc)}",
                    transient=retryable,
                ) from None
            except exceptions.TransportError as exc:
                raise TokenError(
                    f"could not reach Google's token URI: {exc}",
                    # A certificate that fails verification will not heal.
                    transient="CERTIFICATE_VERIFY_FAILED" not in str(exc),
                ) from None
            expiry = credentials.expiry  # naive UTC, google-auth's convention
            expires_at = (
                expiry.replace(tzinfo=datetime.timezone.utc).timestamp()
                if expiry
                else None
            )
            return AccessToken(credentials.token, expires_at)


def _refresh_reason(exc: Exception) -> str:
    # RefreshError(message, response_body): keep the message and the OAuth2
    # error fields, never the whole body.
    args = exc.args
    message = str(args[0]) if args else type(exc).__name__
    return message


def _is_json(text: str) -> bool:
    return text.lstrip().startswith("{")
