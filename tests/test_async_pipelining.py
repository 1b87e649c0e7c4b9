"""RFC 2920 PIPELINING (and RFC 3030 CHUNKING) on the async path, aiosmtplib,
judged as the sync path is.

Every delivery test runs against a real server in each dialogue (with and
without PIPELINING, with and without CHUNKING): the outcome (what the server
received, ``hypermail_status``, the error and its code) must be the same, and
what went over the wire shows which dialogue ran. The last tests drive
:class:`PipeliningProtocol` directly, for the orders in which replies can reach
it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiosmtplib
import pytest
from django.core.mail import EmailMessage

from hypermail_django.backends import FluxMailBackend
from hypermail_django.exceptions import (
    ConnectionLost,
    DataRefused,
    RecipientsRefused,
    SenderRefused,
)
from hypermail_django.testing import SMTPTestServer
from hypermail_django.transport import Envelope
from hypermail_django.transport.async_protocol import PipeliningProtocol
from hypermail_django.transport.connection import EAGER_CHUNK_LIMIT

from .conftest import PASSWORD

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("close_async_pools")]

FLOW = {"MAIL", "RCPT", "DATA", "BDAT", "RSET"}


@pytest.fixture
def server(either_dialogue_server: SMTPTestServer) -> SMTPTestServer:
    """Every test here runs in each dialogue: see conftest.DIALOGUES."""
    return either_dialogue_server


def _backend(relay: SMTPTestServer, **options: Any) -> FluxMailBackend:
    """A backend aimed at ``relay``, for tests that start a server of their own
    (``make_backend`` would start the parametrized ``server`` for nothing)."""
    return FluxMailBackend(host=relay.host, port=relay.port, retry_delay=0.5, **options)


def _message(*to: str, subject: str = "Async", body: str = "Body") -> EmailMessage:
    return EmailMessage(subject, body, "from@example.com", list(to or ["a@x.org"]))


def _flow(server: SMTPTestServer, session: int = 1) -> list[str]:
    """The transaction commands one session received, in order."""
    return [v for s, v, _ in server.commands if s == session and v in FLOW]


def _count(server: SMTPTestServer, verb: str) -> int:
    return sum(1 for _, seen, _ in server.commands if seen == verb)


def _body(server: SMTPTestServer) -> str:
    """The command that carries the message in this server's dialogue."""
    return "BDAT" if server.chunking else "DATA"


def _mail_reads(server: SMTPTestServer) -> list[bytes]:
    """Each socket read of the server that carried a MAIL command."""
    return [chunk for _, chunk in server.received_chunks if b"MAIL FROM" in chunk]


def _assert_dialogue(server: SMTPTestServer) -> None:
    """Each MAIL came with its RCPTs and DATA (or the message as BDAT, with
    CHUNKING) in one read iff pipelining; never DATA with CHUNKING."""
    reads = _mail_reads(server)
    assert reads
    for read in reads:
        if server.pipelining and server.chunking:
            assert b"\r\nRCPT TO:" in read
            assert b"\r\nBDAT " in read
            assert b"\r\nDATA\r\n" not in read
        elif server.pipelining:
            assert b"\r\nRCPT TO:" in read
            assert read.endswith(b"\r\nDATA\r\n")
        else:
            assert read.count(b"\r\n") == 1
            assert read.startswith(b"MAIL FROM:")
    verbs = {verb for _, verb, _ in server.commands}
    assert ("DATA" in verbs) is not server.chunking


# -- the dialogue -----------------------------------------------------------


async def test_mail_rcpts_and_data_arrive_in_one_read_when_offered(
    server, make_backend
):
    message = _message("a@x.org", "b@x.org")
    assert await make_backend().asend_messages([message]) == 1
    (received,) = server.messages
    assert received.rcpt_tos == ["a@x.org", "b@x.org"]
    assert message.hypermail_status.sent == ["a@x.org", "b@x.org"]
    (read,) = _mail_reads(server)
    body = b"BDAT %d LAST\r\n" % len(received.data) if server.chunking else b"DATA"
    if server.pipelining:
        assert read.startswith(b"MAIL FROM:<from@example.com> SIZE=")
        assert b"\r\nRCPT TO:<a@x.org>\r\nRCPT TO:<b@x.org>\r\n" + body in read
    else:
        assert b"RCPT" not in read
        assert not any(
            b"RCPT TO:<a@x.org>" in chunk and b"RCPT TO:<b@x.org>" in chunk
            for _, chunk in server.received_chunks
        )
        if server.chunking:  # The message went in a write of its own.
            assert any(chunk.startswith(body) for _, chunk in server.received_chunks)
    assert _flow(server) == ["MAIL", "RCPT", "RCPT", _body(server)]
    _assert_dialogue(server)


@pytest.mark.parametrize(
    ("pipelining", "chunking", "round_trips"),
    [(True, False, 2), (False, False, 5), (True, True, 1), (False, True, 4)],
    ids=["pipelining", "one-command-at-a-time", "pipelining+chunking", "chunking"],
)
async def test_round_trips_per_message_on_a_pooled_connection(
    pipelining, chunking, round_trips
):
    """MAIL, two RCPTs, DATA and the content: two round trips pipelined, five
    without; with BDAT in place of DATA, one and four (counted by the server,
    which delays each flight of client data)."""
    with SMTPTestServer(
        pipelining=pipelining, chunking=chunking, round_trip_delay=0.001
    ) as relay:
        backend = _backend(relay)
        assert await backend.asend_messages([_message()]) == 1  # Connects.
        relay.reset()
        message = _message("a@x.org", "b@x.org")
        assert await backend.asend_messages([message]) == 1
        assert relay.round_trips == round_trips
        assert relay.sessions == 0  # No new connection since reset().
        (received,) = relay.messages
        assert received.rcpt_tos == ["a@x.org", "b@x.org"]


async def test_one_refused_recipient_leaves_the_others_delivered(server, make_backend):
    server.fail("RCPT", "550 5.1.1 No such user", match="b@x.org")
    message = _message("a@x.org", "b@x.org", "c@x.org")
    assert await make_backend(max_retries=2).asend_messages([message]) == 1
    (received,) = server.messages
    assert received.rcpt_tos == ["a@x.org", "c@x.org"]
    status = message.hypermail_status
    assert status.status == "partial"
    assert status.attempts == 1
    assert status.sent == ["a@x.org", "c@x.org"]
    assert status.refused == ["b@x.org"]
    assert status.recipients["b@x.org"].code == 550
    assert status.recipients["b@x.org"].reply == "5.1.1 No such user"
    assert status.recipients["a@x.org"].code == 250
    _assert_dialogue(server)


async def test_refused_sender_leaves_the_connection_usable(server, make_backend, waits):
    server.fail("MAIL", "550 5.7.1 Sender rejected", times=1)
    backend = make_backend(max_retries=2)
    first = _message(subject="first")
    with pytest.raises(SenderRefused) as caught:
        await backend.asend_messages([first])
    assert caught.value.code == "sender_refused"
    assert caught.value.smtp_code == 550
    assert caught.value.transient is False
    assert first.hypermail_status.status == "failed"
    assert first.hypermail_status.attempts == 1
    assert waits == []
    second = _message(subject="second")
    assert await backend.asend_messages([second]) == 1
    (received,) = server.messages
    assert received.message()["Subject"] == "second"
    assert received.session == 1
    assert server.sessions == 1
    # Pipelined, RCPT and DATA (or BDAT) were already sent: their replies were
    # read (and dropped) before RSET, so none was taken for the second message's.
    body = _body(server)
    refused = ["MAIL", "RCPT", body] if server.pipelining else ["MAIL"]
    assert _flow(server) == [*refused, "RSET", "MAIL", "RCPT", body]
    _assert_dialogue(server)


async def test_all_recipients_refused_sends_no_content(server, make_backend):
    server.fail("RCPT", "550 5.1.1 No such user", times=2)
    backend = make_backend()
    message = _message("a@x.org", "b@x.org")
    with pytest.raises(RecipientsRefused) as caught:
        await backend.asend_messages([message])
    assert caught.value.code == "recipients_refused"
    assert caught.value.transient is False
    assert message.hypermail_status.refused == ["a@x.org", "b@x.org"]
    assert server.messages == []
    # The connection carries the next message.
    assert await backend.asend_messages([_message(subject="next")]) == 1
    (received,) = server.messages
    assert received.message()["Subject"] == "next"
    assert server.sessions == 1
    # Pipelined, DATA (or BDAT) went out with the RCPTs, and was refused.
    body = _body(server)
    refused = ["MAIL", "RCPT", "RCPT"] + ([body] if server.pipelining else [])
    assert _flow(server) == [*refused, "RSET", "MAIL", "RCPT", body]


async def test_354_with_no_recipient_accepted_ends_the_empty_message():
    """RFC 2920: if DATA was accepted although no RCPT was, send the empty
    message at once; nothing else would end the data phase."""
    with SMTPTestServer(pipelining=True) as relay:
        relay.fail("RCPT", "550 5.1.1 No such user", times=1)
        relay.fail("DATA", "354 End data with <CR><LF>.<CR><LF>", times=1)
        backend = _backend(relay)
        with pytest.raises(RecipientsRefused):
            await backend.asend_messages([_message()])
        assert (1, b".\r\n") in relay.received_chunks
        assert relay.messages == []
        assert await backend.asend_messages([_message(subject="next")]) == 1
        (received,) = relay.messages
        assert received.message()["Subject"] == "next"
        assert relay.sessions == 1


# -- the server closing or failing -----------------------------------------------


async def test_421_at_mail_on_a_pooled_connection_is_replaced_transparently(
    server, make_backend, waits
):
    backend = make_backend()
    await backend.asend_messages([_message(subject="first")])
    server.fail("MAIL", "421 4.4.2 Idle timeout, closing", times=1)
    message = _message("a@x.org", "b@x.org", subject="second")
    assert await backend.asend_messages([message]) == 1
    assert message.hypermail_status.attempts == 1
    assert message.hypermail_status.sent == ["a@x.org", "b@x.org"]
    assert waits == []
    assert server.sessions == 2
    assert [(m.session, m.message()["Subject"]) for m in server.messages] == [
        (1, "first"),
        (2, "second"),
    ]
    _assert_dialogue(server)


async def test_421_at_rcpt_defers_the_rest_to_a_new_connection(server, make_backend):
    server.fail("RCPT", "421 4.3.2 Shutting down", times=1, match="b@x.org")
    message = _message("a@x.org", "b@x.org", "c@x.org")
    assert await make_backend(max_retries=1).asend_messages([message]) == 1
    delivered = {m.session: m.rcpt_tos for m in server.messages}
    if server.pipelining and server.chunking:
        # The message was already on its way behind the RCPTs; this server
        # carried on and took it for a and c. Only b is tried again.
        assert delivered == {1: ["a@x.org", "c@x.org"], 2: ["b@x.org"]}
    else:
        # Nothing was sent after the 421: a is deferred with the rest.
        assert delivered == {2: ["a@x.org", "b@x.org", "c@x.org"]}
    assert message.hypermail_status.status == "sent"
    assert message.hypermail_status.attempts == 2


async def test_421_at_rcpt_then_hanging_up_delivers_each_recipient_once(
    server, make_backend
):
    """A server that means its 421 closes the connection: whatever was already
    sent behind the RCPTs, nothing of this attempt was accepted."""
    server.fail("RCPT", "421 4.3.2 Shutting down", times=1, match="b@x.org")
    server.drop("RCPT", times=1, match="c@x.org")
    message = _message("a@x.org", "b@x.org", "c@x.org")
    assert await make_backend(max_retries=2).asend_messages([message]) == 1
    delivered = sorted(r for m in server.messages for r in m.rcpt_tos)
    assert delivered == ["a@x.org", "b@x.org", "c@x.org"]
    assert message.hypermail_status.status == "sent"


async def test_421_at_rcpt_then_hanging_up_without_retries_defers_everyone(
    server, make_backend
):
    """After a 421 the connection going away is what the server announced, not
    a lost connection: every recipient of the attempt is deferred by the 421."""
    server.fail("RCPT", "421 4.3.2 Shutting down", times=1, match="b@x.org")
    server.drop("RCPT", times=1, match="c@x.org")
    message = _message("a@x.org", "b@x.org", "c@x.org")
    with pytest.raises(RecipientsRefused) as caught:
        await make_backend().asend_messages([message])
    assert caught.value.code == "recipients_deferred"
    assert caught.value.transient is True
    status = message.hypermail_status
    assert status.deferred == ["a@x.org", "b@x.org", "c@x.org"]
    assert {rs.code for rs in status.recipients.values()} == {421}
    assert server.messages == []


@pytest.mark.parametrize("step", ["DATA", "DATA_END"])
async def test_permanent_data_refusal_is_not_retried(server, make_backend, waits, step):
    server.fail(step, "554 5.7.1 Rejected")
    message = _message("a@x.org", "b@x.org")
    with pytest.raises(DataRefused) as caught:
        await make_backend(max_retries=3).asend_messages([message])
    assert caught.value.code == "data_refused"
    assert caught.value.smtp_code == 554
    assert caught.value.transient is False
    status = message.hypermail_status
    assert status.status == "failed"
    assert status.attempts == 1
    assert status.refused == ["a@x.org", "b@x.org"]
    assert status.recipients["a@x.org"].code == 554
    assert waits == []
    assert server.messages == []
    assert _count(server, "MAIL") == 1
    assert _flow(server)[-1] == "RSET"


@pytest.mark.parametrize("step", ["DATA", "DATA_END"])
async def test_transient_data_refusal_is_retried_per_policy(
    server, make_backend, waits, step
):
    server.fail(step, "451 4.3.0 Try again later", times=1)
    message = _message("a@x.org", "b@x.org")
    assert await make_backend(max_retries=2).asend_messages([message]) == 1
    (received,) = server.messages
    assert received.rcpt_tos == ["a@x.org", "b@x.org"]
    assert message.hypermail_status.attempts == 2
    assert message.hypermail_status.status == "sent"
    assert len(waits) == 1
    assert server.sessions == 1  # RSET kept the connection for the retry.
    assert _count(server, "MAIL") == 2
    _assert_dialogue(server)


async def test_transient_data_refusal_without_retries_defers(server, make_backend):
    server.fail("DATA", "451 4.3.0 Try again later", times=1)
    message = _message()
    with pytest.raises(DataRefused) as caught:
        await make_backend().asend_messages([message])
    assert caught.value.transient is True
    assert message.hypermail_status.deferred == ["a@x.org"]


@pytest.mark.parametrize("step", ["RCPT", "DATA_END"])
async def test_connection_dropped_mid_transaction_counts_once_and_is_retried(
    server, make_backend, waits, step
):
    """Unlike a pooled connection found dead at MAIL (replaced without counting),
    a connection lost after MAIL was accepted costs an attempt."""
    backend = make_backend(max_retries=1)
    await backend.asend_messages([_message(subject="warm-up")])
    server.drop(step, times=1)
    message = _message("a@x.org", "b@x.org", subject="dropped")
    assert await backend.asend_messages([message]) == 1
    assert message.hypermail_status.attempts == 2
    assert message.hypermail_status.sent == ["a@x.org", "b@x.org"]
    assert len(waits) == 1
    subjects = [m.message()["Subject"] for m in server.messages]
    assert subjects == ["warm-up", "dropped"]  # Delivered once.
    assert server.messages[1].session == 2


async def test_connection_dropped_without_retries_raises_connection_lost(
    server, make_backend
):
    server.drop("DATA_END", times=1)
    message = _message()
    with pytest.raises(ConnectionLost) as caught:
        await make_backend().asend_messages([message])
    assert caught.value.code == "connection_lost"
    assert caught.value.transient is True
    assert message.hypermail_status.deferred == ["a@x.org"]


async def test_cancelled_send_never_leaves_a_reply_for_the_next_message(
    server, make_backend
):
    backend = make_backend()
    await backend.asend_messages([_message(subject="warm-up")])
    server.delay("DATA_END", 1.0, times=1)  # Answers after the caller gave up.
    sending = asyncio.ensure_future(backend.asend_messages([_message()]))
    for _ in range(500):  # Cancel once the content is in, its reply pending.
        ends = [c for _, c in server.received_chunks if c.endswith(b"\r\n.\r\n")]
        if _count(server, "BDAT") == 2 or len(ends) == 2:
            break
        await asyncio.sleep(0.01)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
    message = _message("a@x.org", "b@x.org", subject="after")
    assert await backend.asend_messages([message]) == 1
    assert message.hypermail_status.attempts == 1
    (after,) = [m for m in server.messages if m.message()["Subject"] == "after"]
    assert after.session == 2
    assert after.rcpt_tos == ["a@x.org", "b@x.org"]


# -- what is sent --------------------------------------------------------------


async def test_smtputf8_addresses_are_sent_in_utf8(server, make_backend):
    message = _message("jürgen@x.org", "b@x.org")
    assert await make_backend().asend_messages([message]) == 1
    (received,) = server.messages
    assert received.smtputf8 is True
    assert received.rcpt_tos == ["jürgen@x.org", "b@x.org"]
    assert "SMTPUTF8" in [option.upper() for option in received.mail_options]
    assert message.hypermail_status.sent == ["jürgen@x.org", "b@x.org"]
    if server.pipelining:
        (read,) = _mail_reads(server)
        assert "RCPT TO:<jürgen@x.org>\r\n".encode() in read
    _assert_dialogue(server)


async def test_lines_starting_with_a_dot_arrive_intact(server, make_backend):
    body = "first\n.leading dot\n..two dots\n.\nlast"
    message = _message(body=body)
    assert await make_backend().asend_messages([message]) == 1
    (received,) = server.messages
    assert received.message().get_content().splitlines() == body.splitlines()
    assert b"\r\n.leading dot\r\n..two dots\r\n.\r\nlast" in received.data
    _assert_dialogue(server)


async def test_content_goes_out_as_aiosmtplibs_data_sends_it(server, make_backend):
    """Line endings are made CRLF and the content ends with one, as aiosmtplib's
    ``data()`` does: the pipelined dialogue sends the same bytes."""
    envelope = Envelope(
        mail_from="from@example.com",
        recipients=("a@x.org",),
        data=b"Subject: raw\n\n.dot\nbare LF\rbare CR\r\n.\r\nend",
    )
    status = await make_backend().adeliver(envelope)
    assert status.sent == ["a@x.org"]
    (received,) = server.messages
    assert received.data == (
        b"Subject: raw\r\n\r\n.dot\r\nbare LF\r\nbare CR\r\n.\r\nend\r\n"
    )
    _assert_dialogue(server)


async def test_a_large_message_waits_for_an_accepted_recipient(server, make_backend):
    """Past EAGER_CHUNK_LIMIT the message does not ride with MAIL and RCPT: a
    refused transaction never uploads it."""
    body = "".join(f"line {n:06d} {'x' * 60}\n" for n in range(1200))
    assert len(body) > EAGER_CHUNK_LIMIT
    server.fail("RCPT", "550 5.1.1 No such user", times=1)
    backend = make_backend()
    with pytest.raises(RecipientsRefused):
        await backend.asend_messages([_message(body=body)])
    assert _count(server, "BDAT") == 0
    assert all(b"line 000000" not in chunk for _, chunk in server.received_chunks)
    assert await backend.asend_messages([_message(body=body, subject="big")]) == 1
    (received,) = server.messages
    assert received.message().get_content().splitlines() == body.splitlines()
    if server.chunking:
        assert _count(server, "BDAT") == 1
        for read in _mail_reads(server):
            assert b"BDAT" not in read
    else:  # Pipelined, the refused transaction's DATA went out (and got a 503).
        assert _count(server, "DATA") == (2 if server.pipelining else 1)


@pytest.mark.parametrize(
    ("options", "one_write", "body"),
    [
        ({}, True, "BDAT"),
        ({"chunking": False}, True, "DATA"),
        ({"pipelining": False}, False, "BDAT"),
        ({"pipelining": False, "chunking": False}, False, "DATA"),
    ],
)
async def test_offered_extensions_can_be_turned_off(options, one_write, body):
    message = _message(body="Body\n.dot\n")
    with SMTPTestServer(pipelining=True, chunking=True) as relay:
        assert await _backend(relay, **options).asend_messages([message]) == 1
        (received,) = relay.messages
        assert _flow(relay) == ["MAIL", "RCPT", body]
        (read,) = _mail_reads(relay)
        assert (b"RCPT TO:" in read) is one_write
    assert received.message().get_content().splitlines() == ["Body", ".dot"]


# -- over TLS ------------------------------------------------------------------


@pytest.mark.parametrize("chunking", [False, True], ids=["data", "bdat"])
@pytest.mark.parametrize("mode", ["starttls", "implicit_tls"])
async def test_pipelining_over_tls_with_auth(trust_ca, certs, mode, chunking):
    """The protocol object that reads pipelined replies outlives STARTTLS and
    serves implicit TLS; PIPELINING counts from the EHLO after STARTTLS."""
    starttls = mode == "starttls"
    with SMTPTestServer(
        starttls=starttls,
        implicit_tls=not starttls,
        certs=certs,
        auth={"mailer": PASSWORD},
        pipelining=True,
        chunking=chunking,
    ) as relay:
        backend = _backend(
            relay,
            use_tls=starttls,
            use_ssl=not starttls,
            username="mailer",
            password=PASSWORD,
        )
        messages = [_message("a@x.org", "b@x.org", subject=f"n{n}") for n in range(2)]
        assert await backend.asend_messages(messages) == 2
        assert [m.hypermail_status.sent for m in messages] == [
            ["a@x.org", "b@x.org"]
        ] * 2
        received = relay.messages
        assert [(m.tls, m.authenticated_as) for m in received] == [(True, "mailer")] * 2
        assert relay.sessions == 1
        verbs = [verb for _, verb, _ in relay.commands]
        assert verbs.count("EHLO") == (2 if starttls else 1)
        assert verbs.count("STARTTLS") == (1 if starttls else 0)
        _assert_dialogue(relay)
        assert len(_mail_reads(relay)) == 2


# -- the protocol, reply by reply ----------------------------------------------


class _Wire(asyncio.Transport):
    """A transport that records what is written, for feeding replies by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


async def _greeted_protocol() -> tuple[PipeliningProtocol, _Wire]:
    protocol = PipeliningProtocol(loop=asyncio.get_running_loop())
    wire = _Wire()
    protocol.connection_made(wire)
    protocol.data_received(b"220 ready\r\n")
    assert (await protocol.read_response(1)).code == 220
    return protocol, wire


async def test_replies_that_arrive_before_they_are_read_are_kept_in_order():
    protocol, wire = await _greeted_protocol()
    protocol.write_pipelined([b"MAIL FROM:<f@x.org>", b"RCPT TO:<a@x.org>", b"DATA"])
    assert bytes(wire.written) == (
        b"MAIL FROM:<f@x.org>\r\nRCPT TO:<a@x.org>\r\nDATA\r\n"
    )
    # aiosmtplib's own protocol would keep the first and lose the rest.
    protocol.data_received(b"250 sender ok\r\n")
    protocol.data_received(b"250-recipient\r\n250 ok\r\n35")
    protocol.data_received(b"4 go ahead\r\n")
    replies = [await protocol.read_response(1) for _ in range(3)]
    assert replies == [
        (250, "sender ok"),
        (250, "recipient\nok"),
        (354, "go ahead"),
    ]


async def test_a_reply_that_arrives_while_read_is_waiting_goes_straight_to_it():
    protocol, _ = await _greeted_protocol()
    protocol.write_pipelined([b"NOOP", b"NOOP"])
    first = asyncio.ensure_future(protocol.read_response(1))
    await asyncio.sleep(0)  # The read is now waiting.
    protocol.data_received(b"250 one\r\n250 two\r\n")
    assert await first == (250, "one")
    assert await protocol.read_response(1) == (250, "two")


async def test_replies_received_before_the_connection_closed_are_still_read():
    protocol, _ = await _greeted_protocol()
    protocol.write_pipelined([b"MAIL FROM:<f@x.org>", b"RCPT TO:<a@x.org>", b"DATA"])
    protocol.data_received(b"250 sender ok\r\n421 closing\r\n")
    protocol.connection_lost(None)
    assert await protocol.read_response(1) == (250, "sender ok")
    assert await protocol.read_response(1) == (421, "closing")
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await protocol.read_response(1)


async def test_a_malformed_reply_ends_the_batch_with_an_error():
    protocol, _ = await _greeted_protocol()
    protocol.write_pipelined([b"NOOP", b"NOOP"])
    protocol.data_received(b"250 fine\r\nnonsense\r\n")
    assert await protocol.read_response(1) == (250, "fine")
    with pytest.raises(aiosmtplib.SMTPResponseException):
        await protocol.read_response(1)


async def test_data_beyond_the_batch_is_not_taken_for_a_later_reply():
    protocol, _ = await _greeted_protocol()
    protocol.write_pipelined([b"NOOP"])
    protocol.data_received(b"250 the answer\r\n250 nobody asked\r\n")
    assert await protocol.read_response(1) == (250, "the answer")
    # The batch is over: aiosmtplib's own one-reply-per-command reading is back.
    protocol.write(b"NOOP\r\n")
    read = asyncio.ensure_future(protocol.read_response(1))
    await asyncio.sleep(0)
    protocol.data_received(b"250 second answer\r\n")
    assert await read == (250, "second answer")


async def test_control_characters_are_refused_before_anything_is_written():
    protocol, wire = await _greeted_protocol()
    with pytest.raises(ValueError):
        protocol.write_pipelined([b"NOOP", b"RCPT TO:<a@x.org>\r\nRSET"])
    assert wire.written == b""
