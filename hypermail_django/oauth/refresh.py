"""The plain OAuth2 refresh-token grant (RFC 6749 section 6), on the standard
library: a personal Gmail account, or any provider without a library of its own."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ..transport.token_cache import AccessToken, TokenError
from .provider import Provider, error_from_response, ssl_context


class RefreshToken(Provider):
    """Exchange a long-lived refresh token for access tokens at ``token_url``.

    A provider that rotates refresh tokens (returns a new one with each access
    token) is followed for the life of the process.
    """

    fields = ("token_url", "client_id", "client_secret", "refresh_token", "scope")
    secret_fields = ("client_secret", "refresh_token")

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | None,
        refresh_token: str,
        scope: str | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        super().__init__()
        if not token_url.startswith("https://"):
            raise ValueError("RefreshToken.token_url must be an https:// URL")
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.scope = scope
        self.timeout = timeout
        self._current_refresh_token = refresh_token

    def secrets(self) -> tuple[str, ...]:
        return (*super().secrets(), self._current_refresh_token)

    def __call__(self) -> AccessToken:
        with self._lock:  # a rotated refresh token is used once
            return self._fetch()

    def _fetch(self) -> AccessToken:
        form: dict[str, str] = {
            "grant_type": "refresh_token",
            "refresh_token": self._current_refresh_token,
            "client_id": self.client_id,
        }
        if self.client_secret:
            form["client_secret"] = self.client_secret
        if self.scope:
            form["scope"] = self.scope
        request = urllib.request.Request(
            self.token_url,
            data=urllib.parse.urlencode(form).encode(),
            headers={"Accept": "application/json"},
            method="POST",
        )
        started = time.time()
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=ssl_context()
            ) as response:
                body = _json(response.read())
        except urllib.error.HTTPError as exc:
            raise error_from_response(
                exc.code, _json(exc.read()), self.token_url
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                # Not a passing fault: trust the CA (SSL_CERT_FILE) or fix the URL.
                raise TokenError(
                    f"the certificate of {self.token_url} failed verification: "
                    f"{reason.verify_message}",
                ) from None
            raise TokenError(
                f"could not reach {self.token_url}: {reason}", transient=True
            ) from None
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise error_from_response(200, body, self.token_url)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._current_refresh_token = rotated
        expires_in = body.get("expires_in")
        expires_at = started + float(expires_in) if expires_in else None
        return AccessToken(token, expires_at)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
