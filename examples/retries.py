"""Retries: transient failures are retried with backoff, permanent ones are not.

Run it from the repository root:

    .venv/bin/python examples/retries.py

It starts an SMTP test server on 127.0.0.1 (``hypermail_django.testing``, from the
``testing`` extra), points Django at it through FluxMailBackend with
``max_retries=3`` and ``retry_delay=0.2``, and shows:

1. a server that answers ``MAIL FROM`` with 451 twice (greylisting): the
   message goes out on the third attempt, and each retry is logged;
2. one recipient deferred with 451 once: only that recipient is retried, so
   the other one does not get a second copy;
3. a permanent 550: not retried, the error is raised at once;
4. a server that accepts the connection and never greets (what an HTTP port
   does): each attempt gives up after ``connect_timeout`` (0.5 s here; 10 s by
   default), and the error asks whether this is an SMTP port.
"""

from __future__ import annotations

import logging
import sys
import time

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer

BACKEND = "hypermail_django.backends.FluxMailBackend"
RETRIES = {"max_retries": 3, "retry_delay": 0.2, "retry_max_delay": 5.0}
CONNECT_TIMEOUT = 0.5


def configure(server: SMTPTestServer) -> None:
    """Make FluxMailBackend Django's mailer, aimed at ``server``."""
    if django.VERSION >= (6, 1):
        mailer = {
            "host": server.host,
            "port": server.port,
            "connect_timeout": CONNECT_TIMEOUT,
            **RETRIES,
        }
        mail_settings = {
            "MAILERS": {"default": {"BACKEND": BACKEND, "OPTIONS": mailer}}
        }
    else:
        mail_settings = {
            "EMAIL_BACKEND": BACKEND,
            "EMAIL_HOST": server.host,
            "EMAIL_PORT": server.port,
            "EMAIL_FLUXMAIL_MAX_RETRIES": RETRIES["max_retries"],
            "EMAIL_FLUXMAIL_RETRY_DELAY": RETRIES["retry_delay"],
            "EMAIL_FLUXMAIL_RETRY_MAX_DELAY": RETRIES["retry_max_delay"],
            "EMAIL_FLUXMAIL_CONNECT_TIMEOUT": CONNECT_TIMEOUT,
        }
    settings.configure(DEFAULT_FROM_EMAIL="shop@example.com", **mail_settings)
    django.setup()


def verbs(server: SMTPTestServer, verb: str) -> int:
    return sum(1 for command in server.commands if command.verb == verb)


def main() -> None:
    # Retries and undelivered recipients are logged as WARNING, the final
    # failure as ERROR, on the "hypermail_django" loggers.
    logging.basicConfig(
        stream=sys.stdout, format="   [log] %(levelname)s %(name)s: %(message)s"
    )
    with SMTPTestServer() as server:
        configure(server)
        from django.core.mail import EmailMessage

        from hypermail_django.exceptions import RecipientsRefused

        print("1. The server answers MAIL FROM with 451 twice")
        server.fail("MAIL", "451 4.7.1 Greylisted, try again later", times=2)
        message = EmailMessage("Welcome", "Hello!", to=["alice@example.com"])
        started = time.monotonic()
        message.send()
        elapsed = time.monotonic() - started
        status = message.hypermail_status
        print(f"   status: {status.status}, attempts: {status.attempts}")
        print(f"   MAIL commands the server saw: {verbs(server, 'MAIL')}")
        print(f"   time spent waiting and sending: {elapsed:.2f} s")

        print("2. One of two recipients deferred once")
        server.reset()
        server.fail("RCPT", "451 4.2.0 Mailbox busy", times=1, match="bob@")
        message = EmailMessage(
            "Invoice", "Attached.", to=["carol@example.com", "bob@example.com"]
        )
        message.send()
        status = message.hypermail_status
        print(f"   status: {status.status}, attempts: {status.attempts}")
        for received in server.messages:
            print(f"   delivery {received.rcpt_tos}")

        print("3. A permanent 550 is not retried")
        server.reset()
        server.fail("RCPT", "550 5.1.1 No such user")
        message = EmailMessage("Hello", "Anyone?", to=["ghost@example.com"])
        try:
            message.send()
        except RecipientsRefused as error:
            print(f"   raised {type(error).__name__}, code {error.code!r}")
            print(f"   transient: {error.transient}, recipients: {error.recipients}")
        status = message.hypermail_status
        print(f"   status: {status.status}, attempts: {status.attempts}")
        print(f"   MAIL commands the server saw: {verbs(server, 'MAIL')}")

        print("4. A server that never greets (an HTTP port, say)")
        server.reset()
        server.hang("CONNECT")
        from hypermail_django.transport import close_all_pools

        close_all_pools()  # so the pooled connection of step 3 is not reused
        message = EmailMessage("Hello", "Anyone?", to=["alice@example.com"])
        try:
            message.send()
        except TimeoutError as error:
            where = f"{server.host}:{server.port}"
            code = getattr(error, "code", None)
            print(f"   raised {type(error).__name__}, code {code!r}")
            print(f"   {str(error).replace(where, 'host:port')}")
        status = message.hypermail_status
        print(f"   status: {status.status}, attempts: {status.attempts}")
        print(f"   connections the server saw: {server.sessions}")


if __name__ == "__main__":
    main()
