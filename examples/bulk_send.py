"""Send a batch with send_bulk: rejected addresses, a rate limit, callbacks.

Run from the repository root: ``.venv/bin/python examples/bulk_send.py``
"""

import logging

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer


def main(server: SMTPTestServer) -> None:
    from django.core.mail import EmailMessage

    from hypermail_django import send_bulk

    server.fail("RCPT", "550 5.1.1 No such user", match="nobody")

    def messages():
        for n in range(40):
            to = "nobody@example.com" if n % 10 == 7 else f"reader{n}@example.com"
            yield EmailMessage(f"Digest {n}", "This week's news.", to=[to])

    result = send_bulk(
        messages(),
        max_per_second=20,
        on_error=lambda index, error: print(f"  #{index} failed: {error.code}"),
        progress=False,
    )
    print({key: value for key, value in result.items() if key != "errors"})


if __name__ == "__main__":
    with SMTPTestServer() as smtp:
        settings.configure(
            EMAIL_BACKEND="hypermail_django.backends.FluxMailBackend",
            EMAIL_HOST=smtp.host,
            EMAIL_PORT=smtp.port,
            DEFAULT_FROM_EMAIL="news@example.com",
        )
        django.setup()
        # Refusals are logged as warnings; the callback reports them here.
        logging.getLogger("hypermail_django").setLevel(logging.ERROR)
        main(smtp)
