"""One outcome path: every way of sending records each message once.

Routing, bulk (sync and async, our transport and one by one) and the local
backends record a message's status and fire exactly one of ``post_send`` or
``send_failed`` per message, through ``backends/outcome.py``; the public
``delivery_session()`` of ``FluxMailBackend`` is what bulk sends through.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.mail import EmailMessage

from hypermail_django import asend_bulk, send_bulk, signals
from hypermail_django.backends import ConsoleBackend
from hypermail_django.conf.mailers import get_mailer
from hypermail_django.exceptions import SendError
from hypermail_django.testing import SMTPTestServer
from hypermail_django.transport import Lease, get_pool, leased
from hypermail_django.transport.async_pool import aclose_async_pools

from ..conftest import mailer_for
from ..paths import ROOT
from ..routing.test_routing import closed_port, flux, mailers, router

PACKAGE = ROOT / "hypermail_django"


def _message(n: int, to: str | None = None) -> EmailMessage:
    return EmailMessage(f"N{n}", "Body", "from@example.com", [to or f"u{n}@x.org"])


@pytest.fixture
def outcomes() -> Iterator[list[tuple[str, EmailMessage, Any]]]:
    """Every post_send/send_failed as (signal, message, status)."""
    seen: list[tuple[str, EmailMessage, Any]] = []
    lock = threading.Lock()

    def receiver(name: str) -> Any:
        def record(sender: Any, message: EmailMessage, status: Any, **kw: Any) -> None:
            with lock:
                seen.append((name, message, status))

        return record

    handlers = {"post_send": receiver("sent"), "send_failed": receiver("failed")}
    for name, handler in handlers.items():
        getattr(signals, name).connect(handler)
    yield seen
    for name, handler in handlers.items():
        getattr(signals, name).disconnect(handler)


def assert_one_signal_each(
    outcomes: list[tuple[str, EmailMessage, Any]],
    messages: list[EmailMessage],
    failed: set[int],
) -> None:
    """Each message fired exactly one signal, the right one, carrying the
    status recorded on the message."""
    per_message = Counter(id(message) for _, message, _ in outcomes)
    assert sorted(per_message.values()) == [1] * len(messages)
    kinds = {id(message): (kind, status) for kind, message, status in outcomes}
    for n, message in enumerate(messages):
        kind, status = kinds[id(message)]
        assert kind == ("failed" if n in failed else "sent"), n
        assert status is message.hypermail_status


# -- routing -------------------------------------------------------------------


def _routed(server: SMTPTestServer, backup: SMTPTestServer) -> Any:
    server.fail("RCPT", "550 5.1.1 No such user", match="bad")
    return mailers(
        router=router("down", "primary", "backup"),
        down=flux(closed_port()),
        primary=flux(server),
        backup=flux(backup),
    )


def test_routing_fires_one_signal_per_message(
    server: SMTPTestServer, outcomes: list[Any]
) -> None:
    with SMTPTestServer() as backup, _routed(server, backup):
        messages = [_message(n, "bad@x.org" if n == 1 else None) for n in range(3)]
        backend = get_mailer("router")
        backend.fail_silently = True
        assert backend.send_messages(messages) == 2
    assert_one_signal_each(outcomes, messages, failed={1})
    assert messages[0].hypermail_status.mailer == "primary"
    assert messages[1].hypermail_status.refused == ["bad@x.org"]


def test_routing_raises_after_recording_the_failure(
    server: SMTPTestServer, outcomes: list[Any]
) -> None:
    with SMTPTestServer() as backup, _routed(server, backup):
        messages = [_message(0, "bad@x.org"), _message(1)]
        with pytest.raises(SendError):
            get_mailer("router").send_messages(messages)
    # The batch stops at the failure; the one recorded carries its status.
    assert [(kind, m) for kind, m, _ in outcomes] == [("failed", messages[0])]
    assert outcomes[0][2] is messages[0].hypermail_status


def test_async_routing_fires_one_signal_per_message(
    server: SMTPTestServer, outcomes: list[Any]
) -> None:
    with SMTPTestServer() as backup, _routed(server, backup):
        messages = [_message(n, "bad@x.org" if n == 2 else None) for n in range(3)]
        backend = get_mailer("router")
        backend.fail_silently = True

        async def send() -> int:
            try:
                return int(await backend.asend_messages(messages))
            finally:
                await aclose_async_pools()

        assert asyncio.run(send()) == 2
    assert_one_signal_each(outcomes, messages, failed={2})


def test_bulk_through_a_router_fires_one_signal_per_message(
    server: SMTPTestServer, outcomes: list[Any]
) -> None:
    with SMTPTestServer() as backup, _routed(server, backup):
        messages = [
            _message(n, "bad@x.org" if n in {3, 7} else None) for n in range(10)
        ]
        result = send_bulk(messages, using="router", progress=False)
    assert (result["sent"], result["failed"]) == (8, 2)
    assert_one_signal_each(outcomes, messages, failed={3, 7})


# -- bulk on our transport -----------------------------------------------------


@pytest.mark.parametrize("run", ["sync", "async"])
def test_bulk_fires_one_signal_per_message_and_names_the_mailer(
    server: SMTPTestServer, outcomes: list[Any], run: str
) -> None:
    server.fail("RCPT", "550 5.1.1 No such user", match="bad")
    bad = {2, 5, 11}
    messages = [_message(n, "bad@x.org" if n in bad else None) for n in range(20)]
    with mailer_for(server, max_retries=0):
        if run == "sync":
            result = send_bulk(messages, concurrency=3, processes=0, progress=False)
        else:

            async def send() -> Any:
                try:
                    return await asend_bulk(
                        messages, concurrency=3, processes=0, progress=False
                    )
                finally:
                    await aclose_async_pools()

            result = asyncio.run(send())
    assert (result["sent"], result["failed"]) == (17, 3)
    assert_one_signal_each(outcomes, messages, failed=bad)
    assert {m.hypermail_status.mailer for m in messages} == {"default"}


# -- local backends ------------------------------------------------------------


@pytest.mark.parametrize("fail_silently", [False, True])
def test_a_message_a_local_backend_cannot_keep_fails_like_a_send(
    outcomes: list[Any], fail_silently: bool
) -> None:
    stream = io.StringIO()
    stream.close()
    backend = ConsoleBackend(stream=stream, fail_silently=fail_silently)
    message = _message(0)
    if fail_silently:
        assert backend.send_messages([message]) == 0
    else:
        with pytest.raises(ValueError):
            backend.send_messages([message])
    assert [(kind, m) for kind, m, _ in outcomes] == [("failed", message)]
    assert message.hypermail_status.status == "failed"


# -- the public delivery session -----------------------------------------------


def test_a_delivery_session_sends_prepared_envelopes_on_one_connection(
    server: SMTPTestServer, make_backend: Any, outcomes: list[Any]
) -> None:
    backend = make_backend()
    envelopes = [backend.prepare(_message(n)) for n in range(3)]
    with backend.delivery_session() as deliver:
        statuses = [deliver(envelope) for envelope in envelopes]
    assert [s.sent for s in statuses] == [["u0@x.org"], ["u1@x.org"], ["u2@x.org"]]
    assert {s.mailer for s in statuses} == {"default"}
    assert server.sessions == 1
    assert outcomes == []  # Signals belong to whoever holds the message.
    # The connection went back to the pool: the next send reuses it.
    backend.send_messages([_message(3)])
    assert server.sessions == 1


def test_leased_keeps_a_held_lease_and_returns_its_own(
    server: SMTPTestServer, make_backend: Any
) -> None:
    config = make_backend().transport_config
    held = Lease(get_pool(config))
    held.acquire()
    try:
        with leased(config, held) as lease:
            assert lease is held
        assert held.connection is not None  # Not released: the caller holds it.
        with leased(config) as lease:
            lease.acquire()
            own = lease.connection
        assert own is not None and lease.connection is None
    finally:
        held.release()


# -- one place -----------------------------------------------------------------


def test_only_the_outcome_module_sends_the_outcome_signals() -> None:
    sending = re.compile(r"\b(post_send|send_failed)\.a?send\(")
    senders = {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if sending.search(path.read_text())
    }
    assert senders == {"backends/outcome.py"}


def test_the_example_delivers_prepared_messages_over_one_session() -> None:
    root = PACKAGE.parent
    run = subprocess.run(
        [sys.executable, "examples/status_and_signals.py"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    section = run.stdout.split("4. Prepared now")[1]
    for n in range(3):
        assert f"['c{n}@shop.org']: sent via 'default'" in section
    assert "SMTP sessions the server saw in total: 1" in section
