"""Per-recipient status on the message, and the pre_send / post_send signals.

Run it from the repository root:

    .venv/bin/python examples/status_and_signals.py

It starts an SMTP test server on 127.0.0.1 (``hypermail_django.testing``, from the
``testing`` extra), points Django at it through FluxMailBackend and shows:

1. a message that one recipient refuses with 550: it is still sent to the
   others, and ``message.hypermail_status`` tells who got it and who did not;
2. a ``post_send`` receiver writing an audit line for every message sent;
3. a ``pre_send`` receiver that cancels mail to one domain with ``CancelSend``;
4. messages prepared first, then delivered over one held connection with
   ``delivery_session()``: no signal fires, the caller records the outcome.
"""

from __future__ import annotations

import logging
import sys

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer

BACKEND = "hypermail_django.backends.FluxMailBackend"


def configure(server: SMTPTestServer) -> None:
    """Make FluxMailBackend Django's mailer, aimed at ``server``."""
    if django.VERSION >= (6, 1):
        mailer = {"host": server.host, "port": server.port}
        mail_settings = {
            "MAILERS": {"default": {"BACKEND": BACKEND, "OPTIONS": mailer}}
        }
    else:
        mail_settings = {
            "EMAIL_BACKEND": BACKEND,
            "EMAIL_HOST": server.host,
            "EMAIL_PORT": server.port,
        }
    settings.configure(DEFAULT_FROM_EMAIL="shop@example.com", **mail_settings)
    django.setup()


def main() -> None:
    # hypermail-django logs each recipient it could not deliver to (WARNING).
    logging.basicConfig(
        stream=sys.stdout, format="   [log] %(levelname)s %(name)s: %(message)s"
    )
    with SMTPTestServer() as server:
        configure(server)
        from django.core.mail import EmailMessage

        from hypermail_django import signals
        from hypermail_django.exceptions import CancelSend

        # 2. An audit log: post_send fires for every message accepted for at
        #    least one recipient; status.refused / status.deferred list the rest.
        def audit(sender, message, status, backend, **kwargs):
            print(
                f"   [audit] {status.message_id} {status.status}: "
                f"sent to {status.sent}, refused {status.refused}"
            )

        # 3. Suppress mail to a domain: raising CancelSend skips the message.
        def no_mail_to_test_domains(sender, message, backend, **kwargs):
            if any(address.endswith("@example.test") for address in message.to):
                raise CancelSend

        signals.post_send.connect(audit)
        signals.pre_send.connect(no_mail_to_test_domains)

        print("1. One recipient refused with 550, the other accepted")
        server.fail("RCPT", "550 5.1.1 No such user", match="ghost@example.com")
        message = EmailMessage(
            "Your order", "It has shipped.", to=["alice@example.com"]
        )
        message.bcc = ["ghost@example.com"]  # Bcc is delivered like To and Cc
        sent = message.send()
        status = message.hypermail_status
        print(f"   send() returned {sent}")
        print(f"   message_id: {status.message_id}")
        print(f"   status: {status.status}, attempts: {status.attempts}")
        for address, outcome in status.recipients.items():
            print(f"   {address}: {outcome.status} {outcome.code} {outcome.reply}")
        print(f"   the server delivered to {server.messages[-1].rcpt_tos}")

        print("2. A plain message (the audit receiver prints a line)")
        EmailMessage("Hello", "Hi Bob.", to=["bob@example.com"]).send()

        print("3. A pre_send receiver cancels mail to @example.test")
        cancelled = EmailMessage("Test", "Not for real.", to=["qa@example.test"])
        print(f"   send() returned {cancelled.send()}")
        print(f"   status: {cancelled.hypermail_status.status}")
        print(f"   messages the server received in total: {len(server.messages)}")

        print("4. Prepared now, delivered over one held connection")
        from hypermail_django.conf.mailers import get_mailer

        backend = get_mailer()
        envelopes = [
            backend.prepare(EmailMessage("Receipt", f"No. {n}", to=[f"c{n}@shop.org"]))
            for n in range(3)
        ]
        with backend.delivery_session() as deliver:
            for envelope in envelopes:
                status = deliver(envelope)
                print(f"   {status.sent}: {status.status} via {status.mailer!r}")
        # Every message of this script went over one pooled connection.
        print(f"   SMTP sessions the server saw in total: {server.sessions}")

        signals.post_send.disconnect(audit)
        signals.pre_send.disconnect(no_mail_to_test_domains)


if __name__ == "__main__":
    main()
