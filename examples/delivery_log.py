"""The delivery log and the mail previews, without a browser.

Run it from the repository root:

    .venv/bin/python examples/delivery_log.py

It uses a SQLite file in a temporary directory, FluxMailBackend as the mailer
and an SMTP test server on 127.0.0.1 (``hypermail_django.testing``). It shows:

1. ``send_mail()`` to a good and a refused address, recorded with what the
   server said to each (``HYPERMAIL_LOG_KEEP = "full"``: the message too);
2. ``send_bulk()``, recorded in batches;
3. the question support asks -- "did bob get it?" -- answered from the log;
4. a resend through background delivery, linked to the original;
5. ``hypermail_prune`` deleting what is older than a given age;
6. the password-reset preview, built from sample data.
"""

from __future__ import annotations

import io
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer

BACKEND = "hypermail_django.backends.FluxMailBackend"


def configure(database: Path, server: SMTPTestServer) -> None:
    mailer = {"host": server.host, "port": server.port}
    if django.VERSION >= (6, 1):
        mail_settings = {
            "MAILERS": {"default": {"BACKEND": BACKEND, "OPTIONS": mailer}}
        }
    else:
        mail_settings = {
            "EMAIL_BACKEND": BACKEND,
            "EMAIL_HOST": mailer["host"],
            "EMAIL_PORT": mailer["port"],
        }
    from hypermail_django.background.framework import MODULE

    apps = ["django.contrib.contenttypes", "django.contrib.auth"]
    if MODULE == "django_tasks":  # Django 5.2: the django-tasks backport
        apps.append("django_tasks")
    settings.configure(
        INSTALLED_APPS=[*apps, "hypermail_django", "hypermail_django.log"],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
            }
        ],
        # Tasks run at once, in this process (a real project runs a worker).
        TASKS={"default": {"BACKEND": f"{MODULE}.backends.immediate.ImmediateBackend"}},
        USE_TZ=True,
        SECRET_KEY="example-not-secret",
        DEFAULT_FROM_EMAIL="shop@example.com",
        HYPERMAIL_LOG_KEEP="full",
        **mail_settings,
    )
    django.setup()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, SMTPTestServer() as server:
        configure(Path(tmp) / "db.sqlite3", server)
        from django.core.mail import EmailMessage, send_mail
        from django.core.management import call_command
        from django.utils import timezone

        from hypermail_django import send_bulk
        from hypermail_django.log.models import Delivery
        from hypermail_django.log.resend import resend
        from hypermail_django.previews import get_preview

        call_command("migrate", verbosity=0)
        server.fail("RCPT", "550 5.1.1 No such user", match="ghost@")

        print("1. send_mail() to a good and a refused address")
        send_mail(
            "Your order",
            "It shipped.",
            None,
            ["alice@example.com", "ghost@example.com"],
        )
        delivery = Delivery.objects.get()
        print(f"   {delivery.subject!r}: {delivery.status}, {delivery.size} bytes kept")
        for r in delivery.recipients.all():
            print(f"   {r.address}: {r.status} {r.code} {r.reply}")

        print("\n2. send_bulk() of 50 messages")
        result = send_bulk(
            (
                EmailMessage(f"News {i}", "x", None, [f"user{i}@example.com"])
                for i in range(49)
            ),
            progress=False,
            processes=1,
        )
        send_bulk(
            [EmailMessage("News", "x", None, ["bob@example.com"])],
            progress=False,
            processes=1,
        )
        bulk_records = Delivery.objects.filter(via="bulk").count()
        print(f"   sent {result['sent'] + 1}; records: {bulk_records}")

        print("\n3. Did bob@example.com get it?")
        for d in Delivery.objects.filter(recipients__address="bob@example.com"):
            (r,) = d.recipients.all()
            print(f"   {d.subject!r} via {d.via}: {r.status} ({r.code} {r.reply})")

        print("\n4. Resend 'Your order' through background delivery")
        copy = resend(delivery)
        copy.refresh_from_db()
        resent = server.messages[-1].message()
        print(f"   new record: {copy.status}, resend of #{copy.resent_from_id}")
        print(f"   References: {resent['References'] == delivery.message_id}")

        print("\n5. hypermail_prune --older-than 30d")
        Delivery.objects.filter(subject__startswith="News ").update(
            created_at=timezone.now() - timedelta(days=40)
        )
        out = io.StringIO()
        call_command("hypermail_prune", "--older-than", "30d", stdout=out)
        print(f"   {out.getvalue().strip()}")
        print(f"   left: {Delivery.objects.count()}")

        print("\n6. The password-reset preview")
        found = get_preview("hypermail_django.password_reset")
        assert found is not None
        message = found.build()
        print(f"   {found.name}: {message.subject!r} to {message.to}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
