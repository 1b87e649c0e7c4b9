"""Password reset, end to end: the email, the JSON API, enumeration, rate limits.

Run it from the repository root:

    .venv/bin/python examples/password_reset.py

It uses a SQLite file in a temporary directory, FluxMailBackend as the mailer
and an SMTP test server on 127.0.0.1 (``hypermail_django.testing``). It shows:

1. ``send_password_reset_email()`` sending the templated HTML+text email with
   an SPA link, and the link it carried;
2. the JSON API validating that link and setting a new password with it, the
   password validators refusing a weak one, and the spent link refused;
3. ``POST /api/password-reset/`` answering a known and an unknown address
   alike (202, same body), the email sent from a background thread;
4. the per-address rate limit: past it, the same 202, and no email.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import tempfile
from pathlib import Path

import django
from django.conf import settings
from django.urls import include, path

from hypermail_django.testing import SMTPTestServer

BACKEND = "hypermail_django.backends.FluxMailBackend"
SPA = "https://app.example.com/reset/{uid}/{token}/"
LINK = re.compile(r"https://app\.example\.com/reset/([^/\s]+)/([^/\s]+)/")

# This module is the URLconf: the JSON API under /api/.
urlpatterns = [path("api/", include("hypermail_django.auth.api_urls"))]


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
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "hypermail_django",
        ],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}
        },
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["testserver"],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
            }
        ],
        AUTH_PASSWORD_VALIDATORS=[
            {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
            {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
        ],
        USE_TZ=True,
        SECRET_KEY="example-not-secret",
        DEFAULT_FROM_EMAIL="accounts@example.com",
        # Where reset links point: the single-page app's reset route.
        HYPERMAIL_PASSWORD_RESET_URL_TEMPLATE=SPA,
        HYPERMAIL_PASSWORD_RESET_SITE_NAME="Example App",
        **mail_settings,
    )
    django.setup()


def link_in(server: SMTPTestServer) -> tuple[str, str, str]:
    """The reset link of the last message the server received."""
    body = server.messages[-1].message().get_body(("plain",)).get_content()
    match = LINK.search(body)
    assert match is not None
    return match.group(0), match.group(1), match.group(2)


def main() -> int:
    logging.basicConfig(stream=sys.stdout, format="   log: %(message)s")
    with tempfile.TemporaryDirectory() as tmp, SMTPTestServer() as server:
        configure(Path(tmp) / "db.sqlite3", server)
        from django.contrib.auth import authenticate, get_user_model
        from django.core.management import call_command
        from django.test import Client

        from hypermail_django.auth import (
            send_password_reset_email,
            wait_for_deliveries,
        )

        call_command("migrate", verbosity=0)
        user = get_user_model().objects.create_user(
            "alice", "alice@example.com", "old-Pa55word!"
        )
        api = Client()

        def post(url: str, data: dict[str, str]) -> tuple[int, dict]:
            response = api.post(url, json.dumps(data), content_type="application/json")
            return response.status_code, response.json()

        print("1. send_password_reset_email()")
        send_password_reset_email(user, reset_url_template=SPA)
        (received,) = server.wait_for_messages(1)
        link, uid, token = link_in(server)
        print(f"   {received.message()['Subject']!r} to {received.rcpt_tos}")
        print(f"   link: {link}\n")

        print("2. The JSON API, with that link's uid and token")
        pair = {"uid": uid, "token": token}
        print("   validate:", *post("/api/password-reset/validate/", pair))
        weak = {**pair, "new_password": "password"}
        status, body = post("/api/password-reset/confirm/", weak)
        codes = [error["code"] for error in body["errors"]["new_password"]]
        print(f"   confirm with 'password': {status} {codes}")
        strong = {**pair, "new_password": "correct-Horse-battery-9"}
        print("   confirm:", *post("/api/password-reset/confirm/", strong))
        works = authenticate(username="alice", password="correct-Horse-battery-9")
        print(f"   log in with the new password: {works is not None}")
        status, body = post("/api/password-reset/confirm/", strong)
        print(
            f"   the same link again: {status} {body['errors']['token'][0]['code']}\n"
        )

        print("3. POST /api/password-reset/: the same answer for everyone")
        for email in ("alice@example.com", "nobody@example.com"):
            print(f"   {email}:", *post("/api/password-reset/", {"email": email}))
        wait_for_deliveries()
        print(f"   emails received in all: {len(server.messages)} (one more)\n")

        print("4. The per-address limit (3 an hour by default)")
        for attempt in (2, 3, 4):
            status, _ = post("/api/password-reset/", {"email": "alice@example.com"})
            wait_for_deliveries()
            print(f"   request {attempt}: {status}, emails: {len(server.messages)}")
        return 0


if __name__ == "__main__":
    sys.exit(main())
