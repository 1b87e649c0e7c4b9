"""The demo's OAuth2 run: XOAUTH2 with tokens from a local HTTPS authorization
server, as Microsoft 365 and Gmail want it (see docs/oauth2.md)."""

from __future__ import annotations

import os

from hypermail_django.testing import OAuthTestServer, SMTPTestServer, TLSCertificates

MAILBOX = "demo@example.com"


def run_oauth_demo() -> None:
    from django.core.mail import EmailMessage

    from hypermail_django.backends import FluxMailBackend
    from hypermail_django.transport import close_all_pools

    print("\n8. OAuth2: XOAUTH2 with a token from a local authorization server")
    certs = TLSCertificates()
    os.environ["SSL_CERT_FILE"] = certs.ca_file  # trust the local CA
    os.environ["FLUXMAIL_OAUTH_CLIENT_SECRET"] = "demo-secret"
    os.environ["FLUXMAIL_OAUTH_REFRESH_TOKEN"] = "demo-refresh-token"
    with OAuthTestServer(certs) as idp:
        idp.add_refresh_token("demo-app", "demo-secret", "demo-refresh-token", MAILBOX)
        with SMTPTestServer(starttls=True, certs=certs, oauth=idp.check) as server:
            backend = FluxMailBackend(
                host=server.host,
                port=server.port,
                use_tls=True,
                username=MAILBOX,
                auth_mechanism="xoauth2",
                token_provider={
                    "provider": "refresh_token",
                    "token_url": idp.token_url,
                    "client_id": "demo-app",
                },
            )
            for n in (1, 2):
                EmailMessage(
                    f"OAuth {n}",
                    "Signed in with a token.",
                    MAILBOX,
                    ["frank@example.com"],
                    connection=backend,
                ).send()
            print(f"   2 messages, tokens fetched: {idp.issued}")
            idp.revoke()
            close_all_pools()  # a new connection needs AUTH again
            EmailMessage(
                "OAuth 3",
                "After revocation.",
                MAILBOX,
                ["frank@example.com"],
                connection=backend,
            ).send()
            close_all_pools()
            mechanisms = sorted(
                {c.argument for c in server.commands if c.verb == "AUTH"}
            )
            print(f"   token revoked: refused once, 1 new token ({idp.issued} in all)")
            print(f"   AUTH mechanisms used: {', '.join(mechanisms)}")
            print(f"   delivered: {len(server.messages)}, signed in as {MAILBOX}")
