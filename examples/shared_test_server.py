"""A test SMTP server defined once and shared: SMTPServerOptions and Fault.

A suite often wants the same kind of relay in many tests (one that pipelines
and takes BDAT, as Postfix does) and the same misbehaviour (greylisting). Both
are frozen values, defined once at module level: ``SMTPTestServer(RELAY)``
starts a server, keywords override the shared options, ``server.inject(...)``
adds a fault built beforehand. The backend retries the greylisted sender, and
the second relay, which also offers STARTTLS, shows the override.

Run from the repository root: ``.venv/bin/python examples/shared_test_server.py``
"""

from __future__ import annotations

import django
from django.conf import settings

from hypermail_django.testing import (
    Fault,
    FaultKind,
    SMTPServerOptions,
    SMTPTestServer,
)

RELAY = SMTPServerOptions(pipelining=True, chunking=True)
GREYLISTED = Fault(FaultKind.FAIL, "MAIL", times=1, reply="451 4.7.1 Greylisted")


def main() -> None:
    from django.core.mail import EmailMessage

    from hypermail_django.backends import FluxMailBackend
    from hypermail_django.transport import close_all_pools

    with SMTPTestServer(RELAY) as relay, SMTPTestServer(RELAY, starttls=True) as tls:
        relay.inject(GREYLISTED)
        backend = FluxMailBackend(
            host=relay.host, port=relay.port, max_retries=2, retry_delay=0.05
        )
        message = EmailMessage("Hi", "Hello.", "shop@example.com", ["a@example.com"])
        backend.send_messages([message])
        close_all_pools()
        mails = [verb for _, verb, _ in relay.commands if verb == "MAIL"]
        print(f"greylisted once, sent after {len(mails)} MAIL commands")
        print(f"attempts recorded on the message: {message.hypermail_status.attempts}")
        print(f"relay: chunking={relay.chunking} starttls={relay.starttls}")
        print(f"tls relay: chunking={tls.chunking} starttls={tls.starttls}")


if __name__ == "__main__":
    settings.configure(
        EMAIL_BACKEND="hypermail_django.backends.FluxMailBackend",
        DEFAULT_FROM_EMAIL="shop@example.com",
    )
    django.setup()
    main()
