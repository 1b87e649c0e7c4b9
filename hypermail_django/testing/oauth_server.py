"""An OAuth2 authorization server over HTTPS on 127.0.0.1, for tests.

Token providers are only proven by talking to a token endpoint: MSAL fetches
its authority's OpenID configuration before it asks for a token, google-auth
signs a JWT assertion, a refresh-token grant posts a form. This server speaks
all three, really (TLS from a :class:`~.certificates.TLSCertificates` CA, signatures
verified), and issues short-lived tokens that :meth:`OAuthTestServer.check`
accepts for the mailboxes they were granted, so the test SMTP server can
refuse expired or revoked ones. A test can make it fail, be slow, or revoke.

* Microsoft: ``GET /{tenant}/v2.0/.well-known/openid-configuration`` and
  ``POST /{tenant}/oauth2/v2.0/token`` (``client_credentials``, with a client
  secret or a certificate-signed ``client_assertion``);
* Google: ``POST /token``, the JWT bearer grant of RFC 7523 (the assertion is
  verified with the service account's public key);
* RFC 6749 section 6: ``POST /token`` with ``grant_type=refresh_token``.

Nothing here imports Django.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import http.server
import json
import secrets
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .certificates import TLSCertificates
from .server_options import HOST

__all__ = ["OAuthTestServer", "TokenRequest"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class TokenRequest:
    """One request that reached the token endpoint (no secret recorded)."""

    grant_type: str
    client: str
    """client_id, or the service account's email."""
    issued: bool
    status: int


@dataclass
class _Client:
    secret: str | None
    public_key: Any  # from a certificate, for client assertions
    mailboxes: set[str] = field(default_factory=set)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class OAuthTestServer:
    """The authorization server. Use as a context manager.

    Args:
        certs: the CA and server certificate (one is made when None); clients
            must trust ``certs.ca_file`` (``SSL_CERT_FILE``).
        token_lifetime: seconds each issued token lives (``expires_in``).
    """

    def __init__(
        self, certs: TLSCertificates | None = None, *, token_lifetime: float = 3600.0
    ) -> None:
        self.certs = certs or TLSCertificates()
        self.token_lifetime = token_lifetime
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._service_accounts: dict[str, tuple[Any, set[str]]] = {}
        self._refresh_tokens: dict[str, tuple[str, str | None, str]] = {}
        self._revoked: set[str] = set()
        self._revoked_serial = 0
        self._requests: list[TokenRequest] = []
        self._tokens: list[str] = []
        self._failures: list[tuple[int, str]] = []
        self._fail_always: tuple[int, str] | None = None
        self.delay = 0.0
        self._serial = 0
        self._connections: set[socket.socket] = set()
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        handler = _handler_for(self)
        httpd = http.server.ThreadingHTTPServer((HOST, 0), handler)
        # Joined by server_close(): stop() leaves no thread behind.
        httpd.daemon_threads = False
        httpd.block_on_close = True
        context = self.certs.server_context()
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, name="oauth-test-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the listener and every connection (clients keep them alive),
        and join the server's threads. Idempotent."""
        if self._httpd is not None:
            self._httpd.shutdown()
            with self._lock:
                open_connections = list(self._connections)
            for connection in open_connections:
                # Wakes a handler thread waiting for the next keep-alive request.
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> OAuthTestServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``: MSAL's ``authority_host``."""
        return f"https://{HOST}:{self.port}"

    @property
    def token_url(self) -> str:
        """The token URI of the Google and refresh-token grants."""
        return f"{self.url}/token"

    # -- registrations -------------------------------------------------------

    def add_client(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        certificate_pem: bytes | None = None,
        mailboxes: tuple[str, ...] = (),
    ) -> None:
        """An app registration allowed to send as ``mailboxes`` (Exchange's
        ``Add-MailboxPermission`` for its service principal)."""
        public_key = None
        if certificate_pem is not None:
            public_key = x509.load_pem_x509_certificate(certificate_pem).public_key()
        with self._lock:
            self._clients[client_id] = _Client(secret, public_key, set(mailboxes))

    def add_service_account(
        self, email: str, *, subjects: tuple[str, ...]
    ) -> dict[str, Any]:
        """A Google service account with domain-wide delegation for ``subjects``;
        returns its key file's JSON (with this server as ``token_uri``)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with self._lock:
            self._service_accounts[email] = (key.public_key(), set(subjects))
        return {
            "type": "service_account",
            "project_id": "hypermail-test",
            "private_key_id": secrets.token_hex(8),
            "private_key": pem,
            "client_email": email,
            "client_id": "1" + secrets.token_hex(6),
            "token_uri": self.token_url,
        }

    def add_refresh_token(
        self,
        client_id: str,
        client_secret: str | None,
        refresh_token: str,
        mailbox: str,
    ) -> None:
        """A refresh token a user granted ``client_id`` for ``mailbox``."""
        with self._lock:
            self._refresh_tokens[refresh_token] = (client_id, client_secret, mailbox)

    # -- faults --------------------------------------------------------------

    def fail(
        self,
        status: int = 503,
        error: str = "temporarily_unavailable",
        *,
        times: int | None = 1,
    ) -> None:
        """Answer the next ``times`` token requests (None: all, until
        :meth:`clear_faults`) with ``status`` and an RFC 6749 ``error``."""
        with self._lock:
            if times is None:
                self._fail_always = (status, error)
            else:
                self._failures.extend([(status, error)] * times)

    def clear_faults(self) -> None:
        with self._lock:
            self._failures.clear()
            self._fail_always = None
            self.delay = 0.0

    def revoke(self, token: str | None = None) -> None:
        """Revoke one token, or (None) every token issued so far."""
        with self._lock:
            if token is None:
                self._revoked_serial = self._serial
            else:
                self._revoked.add(token)

    # -- records -------------------------------------------------------------

    @property
    def requests(self) -> list[TokenRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def tokens(self) -> list[str]:
        """Every access token issued, oldest first: for tests that check no
        token leaks into logs or errors."""
        with self._lock:
            return list(self._tokens)

    @property
    def issued(self) -> int:
        """How many tokens were issued."""
        with self._lock:
            return sum(1 for r in self._requests if r.issued)

    # -- tokens --------------------------------------------------------------

    def _issue(self, principal: str, mailboxes: set[str]) -> dict[str, Any]:
        with self._lock:
            self._serial += 1
            serial = self._serial
        # Kept short: the test SMTP server reads command lines of at most 512 bytes.
        payload = {
            "p": principal,
            "m": sorted(mailboxes)[:1] if len(mailboxes) == 1 else "",
            "e": round(time.time() + self.token_lifetime, 3),
            "n": serial,
        }
        body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
        signature = _b64url(hmac.new(self._key, body.encode(), "sha256").digest()[:16])
        token = f"{body}.{signature}"
        with self._lock:
            self._tokens.append(token)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.token_lifetime)
            if self.token_lifetime == int(self.token_lifetime)
            else self.token_lifetime,
        }

    def check(self, mailbox: str, token: str) -> bool | str:
        """Whether ``token`` is ours, unexpired, unrevoked and good for
        ``mailbox``: pass as ``SMTPTestServer(oauth=...)``."""
        body, _, signature = token.partition(".")
        expected = _b64url(hmac.new(self._key, body.encode(), "sha256").digest()[:16])
        if not hmac.compare_digest(signature, expected):
            return "not issued here"
        payload = json.loads(_unb64url(body))
        if payload["e"] <= time.time():
            return "expired"
        with self._lock:
            if token in self._revoked or payload["n"] <= self._revoked_serial:
                return "revoked"
            principal = payload["p"]
            allowed: set[str] = set()
            if principal in self._clients:
                allowed = self._clients[principal].mailboxes
            elif payload["m"]:
                allowed = set(payload["m"])
        return True if mailbox in allowed else "mailbox not granted"

    # -- request handling (server threads) -----------------------------------

    def _record(self, grant: str, client: str, issued: bool, status: int) -> None:
        with self._lock:
            self._requests.append(TokenRequest(grant, client, issued, status))

    def _fault(self) -> tuple[int, str] | None:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
            return self._fail_always

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        base = f"{self.url}/{tenant}"
        return {
            "issuer": f"{base}/v2.0",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_types_supported": ["code", "token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def token(self, form: dict[str, str], audience: str) -> tuple[int, dict[str, Any]]:
        """Answer one token request: (HTTP status, JSON body)."""
        if self.delay:
            time.sleep(self.delay)
        grant = form.get("grant_type", "")
        client = form.get("client_id", "")
        fault = self._fault()
        if fault is not None:
            self._record(grant, client, False, fault[0])
            return fault[0], {"error": fault[1], "error_description": "test fault"}
        if grant == "client_credentials":
            status, body = self._client_credentials(form, audience)
        elif grant == JWT_BEARER:
            client, status, body = self._jwt_bearer(form.get("assertion", ""), audience)
        elif grant == "refresh_token":
            status, body = self._refresh(form)
        else:
            status, body = 400, {"error": "unsupported_grant_type"}
        self._record(grant, client, status == 200, status)
        return status, body

    def _client_credentials(
        self, form: dict[str, str], audience: str
    ) -> tuple[int, dict[str, Any]]:
        client_id = form.get("client_id", "")
        with self._lock:
            client = self._clients.get(client_id)
        if client is None:
            return 400, {
                "error": "unauthorized_client",
                "error_description": f"AADSTS700016: Application {client_id} not found",
            }
        if form.get("client_assertion_type") == CLIENT_ASSERTION_TYPE:
            claims = _verify_jwt(form.get("client_assertion", ""), client.public_key)
            if claims is None or claims.get("aud") != audience:
                return 401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS700027: bad client assertion",
                }
        elif client.secret is None or not hmac.compare_digest(
            form.get("client_secret", ""), client.secret
        ):
            return 401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            }
        if form.get("scope", "").split() != ["https://outlook.office365.com/.default"]:
            return 400, {"error": "invalid_scope"}
        return 200, self._issue(client_id, client.mailboxes)

    def _jwt_bearer(
        self, assertion: str, audience: str
    ) -> tuple[str, int, dict[str, Any]]:
        try:
            unverified = json.loads(_unb64url(assertion.split(".")[1]))
        except (IndexError, ValueError):
            return "", 400, {"error": "invalid_grant"}
        email = str(unverified.get("iss", ""))
        with self._lock:
            account = self._service_accounts.get(email)
        if account is None:
            return (
                email,
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT Signature.",
                },
            )
        public_key, subjects = account
        claims = _verify_jwt(assertion, public_key)
        if claims is None:
            return (
                email,
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT Signature.",
                },
            )
        # google-auth always names Google's token URI as the audience.
        audiences = (audience, GOOGLE_TOKEN_URI)
        if claims.get("aud") not in audiences or claims.get("exp", 0) < time.time():
            return (
                email,
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT: expired or wrong audience",
                },
            )
        subject = claims.get("sub")
        if subject not in subjects or claims.get("scope") != "https://mail.google.com/":
            return (
                email,
                401,
                {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access "
                    "tokens using this method, or client not authorized for any of "
                    "the scopes requested.",
                },
            )
        return email, 200, self._issue(email, {str(subject)})

    def _refresh(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            grant = self._refresh_tokens.get(form.get("refresh_token", ""))
        if grant is None:
            return 400, {
                "error": "invalid_grant",
                "error_description": "Token has been expired or revoked.",
            }
        client_id, client_secret, mailbox = grant
        if form.get("client_id") != client_id or (
            client_secret is not None and form.get("client_secret") != client_secret
        ):
            return 401, {"error": "invalid_client"}
        return 200, self._issue(client_id + ":" + mailbox, {mailbox})


def _verify_jwt(token: str, public_key: Any) -> dict[str, Any] | None:
    """The claims of an RS256/PS256 JWT signed by ``public_key``, else None."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_unb64url(header_b64))
        signed = f"{header_b64}.{payload_b64}".encode()
        signature = _unb64url(signature_b64)
        alg = header.get("alg")
        if alg == "RS256":
            public_key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            public_key.verify(
                signature,
                signed,
                padding.PSS(
                    mgf=padding.MGF1(hashes.SHA256()),
                    salt_length=padding.PSS.DIGEST_LENGTH,
                ),
                hashes.SHA256(),
            )
        else:
            return None
        claims = json.loads(_unb64url(payload_b64))
    except (ValueError, InvalidSignature, AttributeError):
        return None
    return claims if isinstance(claims, dict) else None


def _handler_for(server: OAuthTestServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with server._lock:
                server._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; requests are in server.requests

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            parts = path.strip("/").split("/")
            if parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                self._send(200, server.openid_configuration(parts[0]))
            else:
                self._send(404, {"error": "not_found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode()
            form = dict(urllib.parse.parse_qsl(raw))
            path = urllib.parse.urlsplit(self.path).path
            if path == "/token" or path.endswith("/oauth2/v2.0/token"):
                status, body = server.token(form, f"{server.url}{path}")
                self._send(status, body)
            else:
                self._send(404, {"error": "not_found"})

    return Handler
