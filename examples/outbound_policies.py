"""Outbound policies: DKIM-sign with RSA and Ed25519, and redirect staging mail.

A local SMTP server stands in for the relay. The mailer signs every message
with two keys (made here; in a project they come from files or the
environment), and a second mailer, configured as staging, keeps customers
out: only ``@example.com`` is allowed, the rest goes to a staging inbox. The
signatures are verified with dkimpy against the DNS records the keys would
publish.

Run from the repository root: ``.venv/bin/python examples/outbound_policies.py``
(needs the ``dkim`` extra: ``pip install "hypermail-django[dkim]"``).
"""

from __future__ import annotations

import django
from django.conf import settings


def new_keys() -> tuple[str, str]:
    """A 2048-bit RSA key and an Ed25519 key, as PEM text."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    def pem(key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    return pem(rsa.generate_private_key(65537, 2048)), pem(
        ed25519.Ed25519PrivateKey.generate()
    )


def main() -> None:
    import dkim
    from django.core.mail import EmailMessage

    from hypermail_django.backends import FluxMailBackend
    from hypermail_django.outbound.dkim import parse_dkim
    from hypermail_django.testing import SMTPTestServer
    from hypermail_django.transport import close_all_pools

    rsa_pem, ed_pem = new_keys()
    signing = [
        {"domain": "example.com", "selector": "rsa2026", "private_key": rsa_pem},
        {"domain": "example.com", "selector": "ed2026", "private_key": ed_pem},
    ]
    # What the domain publishes: selector._domainkey.domain -> TXT record.
    zone = {
        key.record_name: key.public_key_record().encode()
        for key in parse_dkim(signing, "dkim") or ()
    }
    for name, record in zone.items():
        print(f"publish {name}: {record.decode()[:40]}...")

    def dns(name: bytes, timeout: float = 5) -> bytes | None:
        return zone.get(name.decode().rstrip("."))

    with SMTPTestServer() as server:
        production = FluxMailBackend(host=server.host, port=server.port, dkim=signing)
        staging = FluxMailBackend(
            host=server.host,
            port=server.port,
            dkim=signing,
            allowed_recipients=["@example.com"],
            redirect_to=["staging-inbox@example.com"],
        )
        for name, backend in (("production", production), ("staging", staging)):
            message = EmailMessage(
                "Your order has shipped",
                "It is on its way.",
                "Shop <shop@example.com>",
                ["alice@customer.test", "qa@example.com"],
                bcc=["audit@customer.test"],
            )
            backend.send_messages([message])
            received = server.messages[-1]
            verdicts = [dkim.DKIM(received.data).verify(i, dnsfunc=dns) for i in (0, 1)]
            print(f"{name}: RCPT TO {', '.join(received.rcpt_tos)}")
            print(f"  signatures verify: {verdicts}")
            print(f"  suppressed: {message.hypermail_status.suppressed}")
            original = received.message()["X-Original-To"]
            if original:
                print(f"  To: {received.message()['To']}  (X-Original-To: {original})")
        close_all_pools()


if __name__ == "__main__":
    settings.configure(DEFAULT_FROM_EMAIL="noreply@example.com")
    django.setup()
    main()
