"""Relays that are slow rather than dead: never a duplicate, never a hang.

Each test runs with both drivers of the one SMTP dialogue (smtplib and
aiosmtplib) in all four dialogues (neither extension, PIPELINING, CHUNKING,
both), against a real server that answers late, hangs or closes on purpose,
with several idle connections in the pool. What is asserted is what the server
queued (copies), how many times it was asked (attempts, MAIL commands), and
the status the caller saw; never how long it took.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from django.core.mail import EmailMessage

from hypermail_django import asend_mail, test_connection
from hypermail_django.backends import FluxMailBackend
from hypermail_django.exceptions import (
    ConfigurationError,
    DeliveryUncertain,
    SendError,
)
from hypermail_django.health import ProbeFailed
from hypermail_django.signals import send_failed
from hypermail_django.testing import SMTPTestServer
from hypermail_django.transport.async_pool import AsyncLease, get_async_pool

from ..conftest import DIALOGUES, PASSWORD, Driver, mailer_for


@pytest.fixture
def server(either_dialogue_server):
    return either_dialogue_server


def _message(subject: str = "Slow") -> EmailMessage:
    return EmailMessage(subject, "Body", "from@example.com", ["a@example.com"])


def _one_write(server: SMTPTestServer) -> bool:
    return server.pipelining and server.chunking


def _count(server: SMTPTestServer, verb: str) -> int:
    return sum(1 for _, seen, _ in server.commands if seen == verb)


def _fill_pool(driver: Driver, backend, server: SMTPTestServer, idle: int) -> None:
    """Leave ``idle`` authenticated connections in the pool, then forget what
    the server recorded so far."""
    if driver.loop is None:
        held = [type(backend)(host=server.host, port=server.port) for _ in range(idle)]
        for each in held:
            each.open()
        for each in held:
            each.close()
    else:

        async def hold_then_release() -> None:
            pool = get_async_pool(backend.transport_config)
            leases = [AsyncLease(pool) for _ in range(idle)]
            for lease in leases:
                await lease.acquire()
            for lease in leases:
                await lease.release()

        driver.loop.run_until_complete(hold_then_release())
    assert server.sessions == idle
    server.reset()


@pytest.mark.parametrize("idle", [3])
def test_a_slow_reply_to_mail_never_sends_a_copy_per_pooled_connection(
    driver, server, make_backend, idle
):
    """Issue case 1: a read timeout on the MAIL reply was taken for a stale
    connection and the whole message written again on the next one."""
    backend = make_backend(timeout=0.3, data_timeout=3, max_retries=0)
    _fill_pool(driver, backend, server, idle)
    server.delay("MAIL", 0.6, times=1)
    message = _message()
    if _one_write(server):
        # Every reply of the one write is awaited with data_timeout: it comes.
        assert driver.send(backend, [message]) == 1
        assert message.hypermail_status.sent == ["a@example.com"]
    else:
        with pytest.raises(TimeoutError) as caught:
            driver.send(backend, [message])
        assert "waiting for the reply to MAIL FROM" in str(caught.value)
        assert message.hypermail_status.deferred == ["a@example.com"]
    server.clear_faults()
    assert _count(server, "MAIL") == 1  # no silent replacement
    assert message.hypermail_status.attempts == 1
    assert len(server.messages) <= 1
    assert len(server.messages) == _one_write(server)


def test_a_hung_relay_costs_one_wait_per_attempt_whatever_the_pool_holds(
    driver, server, make_backend
):
    """Issue case 2: five idle connections and a hang made one send wait six
    timeouts and upload the body six times."""
    backend = make_backend(timeout=0.3, data_timeout=0.3, max_retries=1)
    _fill_pool(driver, backend, server, 5)
    server.hang("MAIL")
    message = _message()
    with pytest.raises(SendError) as caught:
        driver.send(backend, [message])
    if _one_write(server):
        # The content went out with MAIL: uncertain, not retried.
        assert isinstance(caught.value, DeliveryUncertain)
        assert _count(server, "MAIL") == 1
        assert message.hypermail_status.uncertain == ["a@example.com"]
    else:
        assert caught.value.code == "timeout"
        assert "did not answer within 0.3 s" in str(caught.value)
        assert "closed a new connection" not in str(caught.value)
        assert _count(server, "MAIL") == 2  # one per counted attempt
        assert message.hypermail_status.attempts == 2
    assert server.messages == []


def test_a_late_reply_to_the_end_of_the_content_is_waited_for(
    driver, server, make_backend
):
    """Issue case 3: the reply to the end of the content was awaited with the
    ordinary timeout, and the timeout retried: four copies queued."""
    server.delay("DATA_END", 0.6, times=1)
    message = _message()
    backend = make_backend(timeout=0.3, data_timeout=5, max_retries=3)
    assert driver.send(backend, [message]) == 1
    assert len(server.messages) == 1
    assert message.hypermail_status.attempts == 1
    assert message.hypermail_status.sent == ["a@example.com"]


@pytest.mark.parametrize("retry_uncertain", [False, True])
def test_no_reply_to_the_content_is_uncertain_and_send_failed_says_so(
    driver, server, make_backend, retry_uncertain
):
    seen = []

    def receiver(sender, message, error, status, **kwargs):
        seen.append((error.code, status.uncertain, status.message_id))

    send_failed.connect(receiver)
    try:
        server.hang("DATA_END", times=1)
        message = _message()
        backend = make_backend(
            timeout=0.3,
            data_timeout=0.3,
            max_retries=2,
            retry_uncertain=retry_uncertain,
        )
        if retry_uncertain:
            assert driver.send(backend, [message]) == 1
            assert message.hypermail_status.attempts == 2
            assert seen == []
        else:
            with pytest.raises(DeliveryUncertain):
                driver.send(backend, [message])
            status = message.hypermail_status
            assert seen == [
                ("delivery_uncertain", ["a@example.com"], status.message_id)
            ]
            assert status.attempts == 1
    finally:
        send_failed.disconnect(receiver)
    body = "BDAT" if server.chunking else "DATA"
    assert _count(server, body) == 1 + retry_uncertain  # one upload per attempt


def test_a_retried_message_keeps_its_message_id(driver, server, make_backend):
    server.hang("DATA_END", times=1)
    message = _message()
    backend = make_backend(data_timeout=0.3, max_retries=1, retry_uncertain=True)
    driver.send(backend, [message])
    [received] = server.messages
    assert received.message()["Message-ID"] == message.hypermail_status.message_id


def test_a_dead_idle_connection_is_still_replaced_for_free(
    driver, server, make_backend
):
    backend = make_backend(max_retries=0)
    _fill_pool(driver, backend, server, 2)
    server.drop_all_connections()  # the server's idle timeout
    message = _message()
    assert driver.send(backend, [message]) == 1
    assert message.hypermail_status.attempts == 1
    assert len(server.messages) == 1


def test_a_421_on_an_idle_connection_is_seen_before_anything_is_sent(
    driver, server, make_backend
):
    """A server closing an idle connection says 421 first: the pool sees it
    waiting on the socket and opens another, without writing a byte."""
    backend = make_backend(max_retries=0)
    _fill_pool(driver, backend, server, 1)
    server.fail("MAIL", "421 4.4.2 Idle timeout, closing", times=1)
    message = _message()
    assert driver.send(backend, [message]) == 1
    assert message.hypermail_status.attempts == 1
    assert len(server.messages) == 1


# -- event loops --------------------------------------------------------------


def _wait_for_open_sessions(server: SMTPTestServer, at_most: int) -> int:
    """The server's count of open connections once it settles (closing is
    seen by the server a moment after the client)."""
    for _ in range(100):
        count = server.open_sessions
        if count <= at_most:
            return count
        time.sleep(0.05)
    return server.open_sessions


def test_short_lived_loops_close_their_connections(server):
    """Issue case 4: each asyncio.run() left its connection open, held by an
    idle aiosmtplib object that kept the closed loop alive."""
    with mailer_for(server):
        for n in range(100):
            asyncio.run(asend_mail(f"Run {n}", "Body", None, ["a@example.com"]))
        for n in range(20):
            async_to_sync(asend_mail)(f"Sync {n}", "Body", None, ["a@example.com"])
    assert len(server.messages) == 120
    assert _wait_for_open_sessions(server, 1) <= 1
    assert _count(server, "QUIT") >= 119


def test_a_long_lived_loop_reuses_its_connections(server):
    with mailer_for(server):

        async def many() -> None:
            from hypermail_django.transport.async_pool import aclose_async_pools

            for n in range(10):
                await asend_mail(f"Call {n}", "Body", None, ["a@example.com"])
            await aclose_async_pools()

        asyncio.run(many())
    assert server.sessions == 1
    assert len(server.messages) == 10


# -- fail_silently, the probe, configuration ------------------------------------


@pytest.fixture
def not_a_certificate(tmp_path) -> str:
    path = tmp_path / "client.pem"
    path.write_text("this is not a certificate\n")
    return str(path)


def test_fail_silently_covers_an_unusable_client_certificate(
    driver, trust_ca, tls_server, make_backend, not_a_certificate
):
    """Issue case 5: ssl.SSLError escaped fail_silently; Django returns 0."""
    seen = []

    def receiver(sender, error, **kwargs):
        seen.append(error.code)

    send_failed.connect(receiver)
    try:
        backend = make_backend(
            tls_server, use_tls=True, ssl_certfile=not_a_certificate, fail_silently=True
        )
        message = _message()
        assert driver.send(backend, [message]) == 0
    finally:
        send_failed.disconnect(receiver)
    assert seen == ["configuration"]
    assert message.hypermail_status.status == "failed"
    assert tls_server.messages == []
    with pytest.raises(SendError) as caught:
        driver.send(
            make_backend(tls_server, use_tls=True, ssl_certfile=not_a_certificate),
            [_message()],
        )
    assert caught.value.code == "configuration"
    assert "ssl_certfile" in str(caught.value)


class _TricklingServer:
    """Accepts one connection and greets one byte at a time, slowly."""

    GREETING = b"220 trickle.example ESMTP at the speed of a dripping tap\r\n"

    def __init__(self, pause: float) -> None:
        self.pause = pause
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            for byte in self.GREETING:
                if self.stopped.wait(self.pause):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return  # The client hung up: what the test wants to see.
                self.sent += 1

    def close(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def trickling_server() -> Iterator[_TricklingServer]:
    server = _TricklingServer(pause=0.2)
    yield server
    server.close()


def test_the_probe_deadline_holds_against_a_server_that_trickles(trickling_server):
    """Issue case 6: each read had its own timeout, so a greeting trickled one
    byte every 0.3 s kept a 1 s check going for as long as the server liked."""
    where = {"host": "127.0.0.1", "port": trickling_server.port}
    with mailer_for(**where), pytest.raises(ProbeFailed) as caught:
        test_connection(timeout=1)
    assert caught.value.reason == "timeout"
    assert caught.value.step == "connect"
    trickling_server.stopped.wait(0.5)
    # Cut off at the deadline, long before the greeting was complete.
    assert trickling_server.sent < len(_TricklingServer.GREETING)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout", float("inf")),
        ("timeout", 1e12),
        ("timeout", float("nan")),
        ("data_timeout", float("inf")),
        ("retry_delay", float("inf")),
        ("retry_max_delay", 86401),
        ("max_connection_age", float("inf")),
    ],
)
def test_only_finite_sane_numbers_are_accepted(make_backend, option, value):
    """Issue case 7: timeout=inf passed validation, then every send raised
    OverflowError, even with fail_silently."""
    with pytest.raises(ConfigurationError) as caught:
        make_backend(**{option: value})
    assert option in str(caught.value)
    assert "a day" in str(caught.value)


def test_infinite_timeout_from_the_environment_is_refused():
    from hypermail_django.conf.env import options_from_env

    with pytest.raises(ConfigurationError) as caught:
        options_from_env({"FLUXMAIL_TIMEOUT": "inf"})
    assert "FLUXMAIL_TIMEOUT" in str(caught.value)


def test_a_day_is_the_longest_wait(make_backend):
    backend = make_backend(timeout=86400, data_timeout=86400, retry_delay=0)
    assert backend.transport_config.timeout == 86400


# -- every step, slow and silent -----------------------------------------------

#: The steps of a send, in order; the first four only on a new connection.
SETUP_STEPS = ["CONNECT", "EHLO", "STARTTLS", "AUTH"]
TRANSACTION_STEPS = ["MAIL", "RCPT", "DATA", "DATA_END", "BDAT"]
#: Setting up a connection is the same in every dialogue (which one is only
#: known after EHLO); the transaction steps run in all four.
CASES = [("pipelining+chunking", step) for step in SETUP_STEPS] + [
    (dialogue, step) for step in TRANSACTION_STEPS for dialogue in DIALOGUES
]


@pytest.fixture
def relay(request, certs) -> Iterator[SMTPTestServer]:
    """A STARTTLS + AUTH relay in the test's ``dialogue``."""
    pipelining, chunking = DIALOGUES[request.getfixturevalue("dialogue")]
    with SMTPTestServer(
        starttls=True,
        certs=certs,
        auth={"mailer": PASSWORD},
        pipelining=pipelining,
        chunking=chunking,
    ) as smtp:
        yield smtp


def _relay_backend(relay: SMTPTestServer, **options) -> FluxMailBackend:
    return FluxMailBackend(
        host=relay.host,
        port=relay.port,
        use_tls=True,
        username="mailer",
        password=PASSWORD,
        retry_delay=0.1,
        **options,
    )


def _content_sent_before(relay: SMTPTestServer, step: str) -> bool:
    """Whether the whole content is out when the reply at ``step`` is due."""
    if step in SETUP_STEPS:
        return False
    if relay.pipelining and relay.chunking:
        return True  # It rode in the first write.
    if step in ("DATA_END", "BDAT"):
        return True
    return step == "DATA" and relay.chunking  # "DATA" fires at BDAT LAST.


def _fires(relay: SMTPTestServer, step: str) -> bool:
    return not (step == "BDAT" and not relay.chunking)


@pytest.mark.parametrize(("dialogue", "step"), CASES)
def test_a_slow_step_queues_exactly_one_copy(driver, trust_ca, dialogue, relay, step):
    """A reply later than ``timeout``: before the content a counted, retried
    attempt; after it (awaited for ``data_timeout``) a late success. Never a
    second copy, whatever the pool holds."""
    backend = _relay_backend(relay, timeout=0.25, data_timeout=3, max_retries=1)
    if step not in SETUP_STEPS:
        _fill_pool(driver, backend, relay, 3)
    relay.delay(step, 0.6, times=1)
    message = _message()
    assert driver.send(backend, [message]) == 1
    relay.wait_for_messages(1)
    assert len(relay.messages) == 1
    retried = _fires(relay, step) and not _content_sent_before(relay, step)
    assert message.hypermail_status.attempts == 1 + retried
    assert message.hypermail_status.sent == ["a@example.com"]


@pytest.mark.parametrize(("dialogue", "step"), CASES)
def test_a_silent_step_ends_within_one_wait_per_attempt(
    driver, trust_ca, dialogue, relay, step
):
    """No reply at all: each counted attempt waits once (``timeout`` before
    the content, ``data_timeout`` after it) and uploads the content at most
    once; after the content the outcome is ``uncertain`` and not retried."""
    backend = _relay_backend(relay, timeout=0.25, data_timeout=0.25, max_retries=1)
    if step not in SETUP_STEPS:
        _fill_pool(driver, backend, relay, 3)
    relay.hang(step)
    message = _message()
    if not _fires(relay, step):
        assert driver.send(backend, [message]) == 1
        return
    with pytest.raises(SendError) as caught:
        driver.send(backend, [message])
    status = message.hypermail_status
    if _content_sent_before(relay, step):
        assert caught.value.code == "delivery_uncertain"
        assert status.uncertain == ["a@example.com"]
        assert status.attempts == 1
    else:
        assert caught.value.code == "timeout"
        assert isinstance(caught.value, TimeoutError)
        if step == "CONNECT":
            expected = "No SMTP greeting from 127.0.0.1"
            assert f"{expected}:{relay.port} within 0.25 s; is this an SMTP port?" in (
                str(caught.value)
            )
        else:
            waited = "EHLO" if step == "EHLO" else step.replace("MAIL", "MAIL FROM")
            waited = waited.replace("RCPT", "RCPT TO")
            assert (
                f"did not answer within 0.25 s (waiting for the reply to {waited})"
                in str(caught.value)
            )
        assert status.deferred == ["a@example.com"]
        assert status.attempts == 2
    uploads = _count(relay, "BDAT") if relay.chunking else _data_ends(relay)
    assert uploads <= status.attempts
    assert relay.messages == []


def _data_ends(relay: SMTPTestServer) -> int:
    """How many times the content reached the server through DATA."""
    return sum(1 for _, chunk in relay.received_chunks if chunk.endswith(b"\r\n.\r\n"))
