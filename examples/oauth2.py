"""OAuth2 sign-in (XOAUTH2) with a token provider, against local servers.

An in-process HTTPS authorization server plays Microsoft Entra ID (MSAL's
client-credentials flow) and an OAuth2 token endpoint (the refresh-token
grant); an SMTP server accepts only the tokens it issued, as Exchange Online
and Gmail do. The secrets come from the environment (``FLUXMAIL_OAUTH_*``),
not from the settings. The backend fetches one token, caches it, and when the
token is revoked it fetches one more and signs in again.

Run from the repository root: ``.venv/bin/python examples/oauth2.py``
(needs the ``microsoft`` extra: ``pip install 'hypermail-django[microsoft]'``).
"""

import os

import django
from django.conf import settings

from hypermail_django.testing import OAuthTestServer, SMTPTestServer, TLSCertificates

MAILBOX = "noreply@contoso.com"


def main(idp: OAuthTestServer, smtp: SMTPTestServer) -> None:
    from django.core.mail import send_mail

    from hypermail_django.backends import FluxMailBackend
    from hypermail_django.transport import close_all_pools

    mailers = {
        "microsoft": {
            "provider": "microsoft",
            "tenant_id": "contoso",
            "client_id": "hypermail-app",
            # client_secret: from FLUXMAIL_OAUTH_CLIENT_SECRET
            "authority_host": idp.url,  # leave out for login.microsoftonline.com
        },
        "refresh_token": {
            "provider": "refresh_token",
            "token_url": idp.token_url,
            "client_id": "hypermail-app",
            # client_secret and refresh_token: from FLUXMAIL_OAUTH_*
        },
    }
    for name, provider in mailers.items():
        backend = FluxMailBackend(
            host=smtp.host,
            port=smtp.port,
            use_tls=True,
            username=MAILBOX,
            auth_mechanism="xoauth2",
            token_provider=provider,
        )
        before = idp.issued
        send_mail("One", "Body", MAILBOX, ["a@example.com"], connection=backend)
        close_all_pools()  # the next message opens a new connection...
        send_mail("Two", "Body", MAILBOX, ["b@example.com"], connection=backend)
        print(f"{name}: 2 sent, {idp.issued - before} token fetched")
        idp.revoke()  # ...and this one needs a new token
        close_all_pools()
        send_mail("Three", "Body", MAILBOX, ["c@example.com"], connection=backend)
        print(f"{name}: revoked token replaced, {idp.issued - before} tokens in all")
        close_all_pools()
    mechanisms = {c.argument for c in smtp.commands if c.verb == "AUTH"}
    print(f"AUTH mechanisms used: {', '.join(sorted(mechanisms))}")
    print(f"signed in as: {sorted({m.authenticated_as for m in smtp.messages})}")


if __name__ == "__main__":
    certs = TLSCertificates()
    os.environ["SSL_CERT_FILE"] = certs.ca_file  # trust the local CA, as for SMTP
    os.environ["FLUXMAIL_OAUTH_CLIENT_SECRET"] = "app-secret"
    os.environ["FLUXMAIL_OAUTH_REFRESH_TOKEN"] = "user-refresh-token"
    settings.configure(EMAIL_BACKEND="hypermail_django.backends.FluxMailBackend")
    django.setup()
    with OAuthTestServer(certs) as idp:
        idp.add_client("hypermail-app", secret="app-secret", mailboxes=(MAILBOX,))
        idp.add_refresh_token(
            "hypermail-app", "app-secret", "user-refresh-token", MAILBOX
        )
        with SMTPTestServer(starttls=True, certs=certs, oauth=idp.check) as smtp:
            main(idp, smtp)
