"""The demo: real email through FluxMailBackend to an SMTP server it starts itself.

Run it with ``./scripts/demo``. It starts an SMTP server on 127.0.0.1, points the
test project at it through ``FLUXMAIL_*`` environment variables, sends a text
mail, an HTML mail with an attachment, a mail with a BCC, a batch over one
connection, a mail the server first answers with 451, and a templated HTML mail
with inlined CSS and an inline image, then prints what the server received; then
runs ``manage.py mailcheck`` against the same server.
"""

from __future__ import annotations

import os
import sys

from hypermail_django.testing import SMTPTestServer


def main() -> int:
    with SMTPTestServer() as server:
        os.environ.update(
            FLUXMAIL_HOST=server.host,
            FLUXMAIL_PORT=str(server.port),
            FLUXMAIL_MAX_RETRIES="2",
            FLUXMAIL_RETRY_DELAY="0.2",
        )
        os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
        import django

        django.setup()
        from django.core import mail
        from django.core.mail import EmailMessage, EmailMultiAlternatives

        print(f"SMTP server listening on {server.host}:{server.port}\n")

        step("1. A text mail with send_mail()")
        mail.send_mail("Welcome", "Thanks for signing up.", None, ["alice@example.com"])
        show(server)

        step("2. An HTML mail with a text part and an attachment")
        receipt = EmailMultiAlternatives(
            "Your receipt",
            "Order #1042: 2 items, 39.90 EUR.",
            to=["bob@example.com"],
        )
        receipt.attach_alternative(
            "<h1>Receipt</h1><p>Order <b>#1042</b></p>", "text/html"
        )
        receipt.attach("receipt.csv", "item,price\nmug,19.95\nmug,19.95\n", "text/csv")
        receipt.send()
        show(server)

        step("3. A mail with a BCC (delivered, never in the headers)")
        EmailMessage(
            "Quarterly report",
            "See attached.",
            to=["carol@example.com"],
            bcc=["archive@example.com"],
        ).send()
        received = show(server)
        print(f"   Bcc header in the delivered bytes? {'Bcc' in received.message()}")

        step("4. A batch of 5 over one connection (send_mass_mail)")
        before = server.sessions
        mail.send_mass_mail(
            [
                (f"Digest {n}", "Your digest.", None, [f"user{n}@example.com"])
                for n in range(5)
            ]
        )
        show(server, last=5)
        print(
            f"   new connections for the batch: {server.sessions - before} "
            "(the pooled one was reused)"
        )

        step("5. The server answers 451 once; the backend retries and delivers")
        server.fail("RCPT", "451 4.3.0 Greylisted, try again later", times=1)
        message = EmailMessage("Greylisted", "Try, try again.", to=["dave@example.com"])
        message.send()
        show(server)
        status = message.hypermail_status
        print(f"   attempts: {status.attempts}, status: {status.status}")

        step("6. A templated HTML email: CSS inlined, with an inline logo")
        from django.conf import settings

        from hypermail_django import send_templated_mail

        logo = settings.BASE_DIR / "templates" / "emails" / "welcome" / "logo.png"
        send_templated_mail(
            "emails/welcome",
            {"name": "Erin", "activate_url": "https://example.com/activate/42"},
            to=["erin@example.com"],
            css_inline=True,
            inline_images={"logo": logo},
            unsubscribe_url="https://example.com/unsubscribe/42",
        )
        parsed = show(server).message()
        image = parsed.get_body(("related",)).get_payload()[1]
        html = parsed.get_body(("html",)).get_content()
        start = html.index('<a class="button"')
        print(f"   MIME: {mime_tree(parsed)}")
        print(
            f"   inline image {image['Content-ID']}: {len(image.get_content())} bytes"
        )
        print(f"   inlined CSS: {html[start : html.index('>', start) + 1]}")
        print(f"   List-Unsubscribe-Post: {parsed['List-Unsubscribe-Post']}")

        print(
            f"\nDone: {len(server.messages)} messages in 6 sending calls, each "
            f"through a new backend instance as Django makes them, delivered over "
            f"{server.sessions} SMTP connection(s)."
        )

        step("\n7. manage.py mailcheck: connect, EHLO, NOOP, QUIT; no mail sent")
        from django.core.management import call_command

        before = len(server.messages)
        call_command("mailcheck")
        print(f"   messages sent by the check: {len(server.messages) - before}")

        from .demo_oauth import run_oauth_demo

        run_oauth_demo()
        return 0


def step(title: str) -> None:
    print(title)


def mime_tree(part) -> str:
    """A MIME tree on one line: multipart/alternative[text/plain, ...]."""
    if part.is_multipart():
        children = ", ".join(mime_tree(child) for child in part.iter_parts())
        return f"{part.get_content_type()}[{children}]"
    return part.get_content_type()


def show(server: SMTPTestServer, last: int = 1):
    received = server.messages[-last:]
    for item in received:
        parsed = item.message()
        print(
            f"   received {parsed['Subject']!r}: MAIL FROM {item.mail_from}, "
            f"RCPT TO {', '.join(item.rcpt_tos)} ({len(item.data)} bytes)"
        )
    return received[-1]


if __name__ == "__main__":
    sys.exit(main())
