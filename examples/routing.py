"""Routing: a primary relay with a backup, and round robin over two relays.

Run it from the repository root:

    .venv/bin/python examples/routing.py

It starts three SMTP test servers on 127.0.0.1 (``hypermail_django.testing``,
from the ``testing`` extra) and configures, through ``MAILERS`` on Django 6.1
or ``HYPERMAIL_MAILERS`` on Django 5.2/6.0 (same shape):

- ``default``: a ``RoutingBackend`` that fails over from ``primary`` to
  ``backup``;
- ``spread``: a ``RoutingBackend`` that sends round robin through ``primary``
  and ``other``.

It shows:

1. the primary answers the connection with 421: the message goes to the
   backup, once, and ``hypermail_status.mailer`` says so;
2. the primary defers one recipient with 451: only that one moves to the
   backup, the other keeps the primary's copy;
3. six messages round robin: three through each relay.
"""

from __future__ import annotations

import logging
import sys

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer

FLUX = "hypermail_django.backends.FluxMailBackend"
ROUTER = "hypermail_django.backends.RoutingBackend"


def relay(server: SMTPTestServer) -> dict[str, object]:
    options = {"host": server.host, "port": server.port, "max_retries": 0}
    return {"BACKEND": FLUX, "OPTIONS": options}


def configure(
    primary: SMTPTestServer, backup: SMTPTestServer, other: SMTPTestServer
) -> None:
    mailers = {
        "default": {
            "BACKEND": ROUTER,
            "OPTIONS": {"mailers": ["primary", "backup"], "strategy": "failover"},
        },
        "spread": {
            "BACKEND": ROUTER,
            "OPTIONS": {"mailers": ["primary", "other"], "strategy": "round_robin"},
        },
        "primary": relay(primary),
        "backup": relay(backup),
        "other": relay(other),
    }
    if django.VERSION >= (6, 1):
        mail_settings: dict[str, object] = {"MAILERS": mailers}
    else:
        # No MAILERS before 6.1: EMAIL_BACKEND is the router, which reads its
        # options (and finds its members) in HYPERMAIL_MAILERS.
        mail_settings = {"EMAIL_BACKEND": ROUTER, "HYPERMAIL_MAILERS": mailers}
    settings.configure(DEFAULT_FROM_EMAIL="shop@example.com", **mail_settings)
    django.setup()


def copies(server: SMTPTestServer) -> list[str]:
    return sorted(rcpt for message in server.messages for rcpt in message.rcpt_tos)


def main() -> None:
    logging.basicConfig(
        stream=sys.stdout, format="   [log] %(levelname)s %(name)s: %(message)s"
    )
    with (
        SMTPTestServer() as primary,
        SMTPTestServer() as backup,
        SMTPTestServer() as other,
    ):
        configure(primary, backup, other)
        from django.core.mail import EmailMessage

        from hypermail_django import send_bulk

        print("1. The primary answers the connection with 421")
        primary.fail("CONNECT", "421 4.3.2 Service not available", times=1)
        message = EmailMessage("Welcome", "Hello!", to=["alice@example.com"])
        message.send()
        print(f"   delivered by: {message.hypermail_status.mailer}")
        print(f"   primary copies: {copies(primary)}, backup copies: {copies(backup)}")

        print("2. The primary defers one of two recipients with 451")
        primary.fail("RCPT", "451 4.2.1 Mailbox busy", match="bob@", times=1)
        message = EmailMessage(
            "News", "Hi!", to=["carol@example.com", "bob@example.com"]
        )
        message.send()
        status = message.hypermail_status
        print(f"   status: {status.status}, sent to: {status.sent}")
        print(f"   primary copies: {copies(primary)}")
        print(f"   backup copies: {copies(backup)}")

        print("3. Six messages round robin over primary and other")
        before = len(primary.messages)
        news = [
            EmailMessage("Digest", "...", to=[f"r{i}@example.com"]) for i in range(6)
        ]
        result = send_bulk(news, using="spread", progress=False)
        print(f"   sent: {result['sent']}")
        print(
            f"   through primary: {len(primary.messages) - before}, "
            f"through other: {len(other.messages)}"
        )


if __name__ == "__main__":
    main()
