"""What PIPELINING and CHUNKING change on the wire, sync and async.

A local server offers RFC 2920 PIPELINING and RFC 3030 CHUNKING, as real relays
do. The backend then sends MAIL, RCPT and the message itself (BDAT) in one
write: one round trip per message. With ``chunking=False`` it falls back to
DATA, and with neither it sends one command at a time.

Run from the repository root: ``.venv/bin/python examples/pipelining.py``
"""

import asyncio
from typing import Any

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer


def dialogue(server: SMTPTestServer, session: int) -> str:
    """The commands of one connection, and how many reads brought them."""
    verbs = [verb for number, verb, _ in server.commands if number == session]
    reads = sum(1 for number, _ in server.received_chunks if number == session)
    return f"{' '.join(verbs)}  ({reads} reads from the socket)"


def main() -> None:
    from django.core.mail import EmailMessage

    from hypermail_django.backends import FluxMailBackend
    from hypermail_django.transport import close_all_pools
    from hypermail_django.transport.async_pool import aclose_async_pools

    choices: list[dict[str, Any]] = [
        {},
        {"chunking": False},
        {"pipelining": False, "chunking": False},
    ]
    for options in choices:
        with SMTPTestServer(pipelining=True, chunking=True) as server:
            backend = FluxMailBackend(host=server.host, port=server.port, **options)
            message = EmailMessage("Hi", "Hello.\n.A dot line.\n", to=["a@example.com"])
            backend.send_messages([message])
            close_all_pools()  # say QUIT, so the dialogue is complete
            label = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
            print(f"sync, {label}: {dialogue(server, 1)}")

    async def send_async(server: SMTPTestServer) -> None:
        backend = FluxMailBackend(host=server.host, port=server.port)
        message = EmailMessage("Hi", "Hello from a coroutine.", to=["a@example.com"])
        await backend.asend_messages([message])
        await aclose_async_pools()  # say QUIT before the loop ends

    with SMTPTestServer(pipelining=True, chunking=True) as server:
        asyncio.run(send_async(server))
        print(f"async, defaults: {dialogue(server, 1)}")
        print(f"received intact: {server.messages[0].message()['Subject']!r}")


if __name__ == "__main__":
    settings.configure(
        EMAIL_BACKEND="hypermail_django.backends.FluxMailBackend",
        DEFAULT_FROM_EMAIL="shop@example.com",
    )
    django.setup()
    main()
