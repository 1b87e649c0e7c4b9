"""What only the aiosmtplib driver has: cancellation, its protocol subclass
surviving TLS, and that protocol reply by reply.

Every delivery, retry and status scenario runs once for both drivers (the
``driver`` fixture of ``conftest.py``, in ``test_delivery``, ``test_retry``,
``test_status_and_signals`` and ``test_slow_relays``). The last tests drive
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
from hypermail_django.testing import SMTPTestServer
from hypermail_django.transport import Envelope
from hypermail_django.transport.async_protocol import PipeliningProtocol
from hypermail_django.transport.commands import transaction_commands

from ..conftest import PASSWORD

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


# -- the aiosmtplib driver ---------------------------------------------------


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
    protocol.send(b"MAIL FROM:<f@x.org>\r\nRCPT TO:<a@x.org>\r\nDATA\r\n", replies=3)
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
    protocol.send(b"NOOP\r\nNOOP\r\n", replies=2)
    first = asyncio.ensure_future(protocol.read_response(1))
    await asyncio.sleep(0)  # The read is now waiting.
    protocol.data_received(b"250 one\r\n250 two\r\n")
    assert await first == (250, "one")
    assert await protocol.read_response(1) == (250, "two")


async def test_replies_received_before_the_connection_closed_are_still_read():
    protocol, _ = await _greeted_protocol()
    protocol.send(b"MAIL FROM:<f@x.org>\r\nRCPT TO:<a@x.org>\r\nDATA\r\n", replies=3)
    protocol.data_received(b"250 sender ok\r\n421 closing\r\n")
    protocol.connection_lost(None)
    assert await protocol.read_response(1) == (250, "sender ok")
    assert await protocol.read_response(1) == (421, "closing")
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await protocol.read_response(1)


async def test_a_malformed_reply_ends_the_batch_with_an_error():
    protocol, _ = await _greeted_protocol()
    protocol.send(b"NOOP\r\nNOOP\r\n", replies=2)
    protocol.data_received(b"250 fine\r\nnonsense\r\n")
    assert await protocol.read_response(1) == (250, "fine")
    with pytest.raises(aiosmtplib.SMTPResponseException):
        await protocol.read_response(1)


async def test_data_beyond_the_batch_is_not_taken_for_a_later_reply():
    protocol, _ = await _greeted_protocol()
    protocol.send(b"NOOP\r\n", replies=1)
    protocol.data_received(b"250 the answer\r\n250 nobody asked\r\n")
    assert await protocol.read_response(1) == (250, "the answer")
    # The batch is over: aiosmtplib's own one-reply-per-command reading is back.
    protocol.write(b"NOOP\r\n")
    read = asyncio.ensure_future(protocol.read_response(1))
    await asyncio.sleep(0)
    protocol.data_received(b"250 second answer\r\n")
    assert await read == (250, "second answer")


async def test_an_idle_connection_that_hears_anything_is_not_reused():
    """A 421 on an idle connection is what a server says before it closes:
    aiosmtplib drops it; the protocol remembers it, so the pool does not
    reuse the connection."""
    protocol, _ = await _greeted_protocol()
    assert not protocol.unsolicited
    protocol.data_received(b"421 4.4.2 Idle timeout, closing\r\n")
    assert protocol.unsolicited
    protocol.send(b"NOOP\r\n", replies=1)
    assert not protocol.unsolicited


async def test_control_characters_are_refused_before_anything_is_written():
    envelope = Envelope("f@x.org", ("a@x.org\r\nRSET",), b"Subject: x\r\n\r\n")
    with pytest.raises(ValueError):
        transaction_commands(envelope, envelope.recipients, lambda name: False)
