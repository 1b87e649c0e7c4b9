"""Microsoft 365 (Exchange Online): the client-credentials flow on MSAL.

An app registration with the ``SMTP.SendAsApp`` application permission signs in
as itself (a client secret or a certificate), and Exchange lets it send as the
mailboxes its service principal was granted (``Add-MailboxPermission``). Needs
``hypermail-django[microsoft]``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..transport.token_cache import AccessToken, TokenError
from .provider import Provider, error_from_response, requests_session

#: The scope of Exchange Online's SMTP AUTH for an app (client credentials).
SCOPE = "https://outlook.office365.com/.default"
AUTHORITY_HOST = "https://login.microsoftonline.com"


class MicrosoftClientCredentials(Provider):
    """Tokens for Exchange Online SMTP from an app registration.

    Give ``client_secret``, or ``certificate``: the path of a PEM file holding
    the certificate uploaded to the app registration and its private key.
    ``authority_host`` is the Entra ID endpoint (a national cloud, or a test
    server); MSAL's instance discovery is skipped for any other than the
    public one.
    """

    fields = (
        "tenant_id",
        "client_id",
        "client_secret",
        "certificate",
        "authority_host",
        "scope",
    )
    secret_fields = ("client_secret",)

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str | None = None,
        certificate: str | None = None,
        *,
        authority_host: str = AUTHORITY_HOST,
        scope: str = SCOPE,
        timeout: float = 30.0,
    ) -> None:
        super().__init__()
        if bool(client_secret) == bool(certificate):
            raise ValueError(
                "MicrosoftClientCredentials needs exactly one of client_secret "
                "and certificate."
            )
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self.certificate = str(certificate) if certificate else None
        self.authority_host = authority_host.rstrip("/")
        self.scope = scope
        self.timeout = timeout
        self._app: Any = None

    def _credential(self) -> Any:
        if self.client_secret:
            return self.client_secret
        assert self.certificate is not None
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        pem = Path(self.certificate).read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        return {
            "private_key": pem.decode(),
            "thumbprint": cert.fingerprint(hashes.SHA1()).hex(),
            "public_certificate": cert.public_bytes(
                serialization.Encoding.PEM
            ).decode(),
        }

    def _application(self) -> Any:
        try:
            import msal
        except ImportError:
            raise TokenError(
                "MicrosoftClientCredentials needs MSAL: pip install "
                "'hypermail-django[microsoft]'"
            ) from None
        if self._app is None:
            # MSAL keeps its own token cache on the application object.
            self._app = msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self._credential(),
                authority=f"{self.authority_host}/{self.tenant_id}",
                http_client=requests_session(),
                instance_discovery=self.authority_host == AUTHORITY_HOST,
                timeout=self.timeout,
            )
        return self._app

    def forget(self, token: str) -> None:
        """Drop ``token`` from MSAL's cache: the server refused it (revoked, or
        the mailbox permission changed), and MSAL would return it until it is
        five minutes from expiry."""
        with self._lock:
            app = self._app
            if app is None:
                return
            import msal

            cache = app.token_cache
            for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN)):
                if item.get("secret") == token:
                    cache.remove_at(item)

    def __call__(self) -> AccessToken:
        where = f"{self.authority_host}/{self.tenant_id}"
        started = time.time()
        with self._lock:
            try:
                result = self._application().acquire_token_for_client(
                    scopes=[self.scope]
                )
            except TokenError:
                raise
            except Exception as exc:
                raise _network_error(exc, where) from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            raise error_from_response(None, result, where)
        expires_in = result.get("expires_in")
        return AccessToken(token, started + float(expires_in) if expires_in else None)


def _network_error(exc: Exception, where: str) -> TokenError:
    """Requests' and MSAL's failures: connection trouble and 5xx are transient."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    transient = status is None or status >= 500 or status == 429
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        transient = False  # trust the CA (SSL_CERT_FILE) or fix authority_host
    elif isinstance(exc, ValueError) and status is None:
        transient = False  # MSAL: OIDC discovery refused (unknown tenant), bad key
    return TokenError(
        f"could not get a token from {where}: {type(exc).__name__}: {exc}",
        transient=transient,
    )
