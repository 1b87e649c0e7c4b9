"""Send mail from async code: asend_mail, and pooled connections within a loop.

Run from the repository root: ``.venv/bin/python examples/async_send.py``
"""

import asyncio

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer


async def main(server: SMTPTestServer) -> None:
    from hypermail_django import asend_mail
    from hypermail_django.transport.async_pool import aclose_async_pools

    for n in range(3):
        sent = await asend_mail(
            f"Hello {n}", "Sent from a coroutine.", None, ["a@example.com"]
        )
        print(f"asend_mail #{n}: sent={sent}")
    await aclose_async_pools()
    print(f"{len(server.messages)} messages over {server.sessions} connection(s)")


if __name__ == "__main__":
    with SMTPTestServer() as smtp:
        settings.configure(
            EMAIL_BACKEND="hypermail_django.backends.FluxMailBackend",
            EMAIL_HOST=smtp.host,
            EMAIL_PORT=smtp.port,
            DEFAULT_FROM_EMAIL="async@example.com",
        )
        django.setup()
        asyncio.run(main(smtp))
