"""Tests of the SMTP test server itself, driven by plain smtplib clients.

If the harness misreports what happened on the wire, every backend test built on
it is worthless, so each fault and TLS mode is checked here against the reference
client.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

from hypermail_django.testing import (
    Fault,
    FaultKind,
    ReceivedMessage,
    SMTPServerOptions,
    SMTPTestServer,
    TLSCertificates,
)

TIMEOUT = 5.0
MESSAGE = (
    b"From: a@example.com\r\n"
    b"To: b@example.com\r\n"
    b"Subject: Hello\r\n"
    b"\r\n"
    b"First line\r\n"
    b".leading dot, stuffed by the client and unstuffed by the server\r\n"
    b"Last line\r\n"
)


@pytest.fixture(scope="module")
def certs() -> Iterator[TLSCertificates]:
    with TLSCertificates() as certs:
        yield certs


@pytest.fixture
def server() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as server:
        yield server


def connect(server: SMTPTestServer, timeout: float = TIMEOUT) -> smtplib.SMTP:
    return smtplib.SMTP(
        server.host, server.port, local_hostname="client.example.com", timeout=timeout
    )


def send(server: SMTPTestServer, rcpts: list[str] | None = None) -> dict:
    with connect(server) as client:
        return client.sendmail("a@example.com", rcpts or ["b@example.com"], MESSAGE)


def verbs(server: SMTPTestServer) -> list[str]:
    return [verb for _, verb, _ in server.commands]


# -- plain delivery and records -------------------------------------------------


def test_plain_delivery_is_recorded_with_exact_bytes(server: SMTPTestServer) -> None:
    assert server.host == "127.0.0.1"
    assert send(server, ["b@example.com", "c@example.com"]) == {}

    [message] = server.messages
    assert isinstance(message, ReceivedMessage)
    assert message.mail_from == "a@example.com"
    assert message.rcpt_tos == ["b@example.com", "c@example.com"]
    assert message.data == MESSAGE
    assert message.mail_options == [f"SIZE={len(MESSAGE)}"]
    assert message.rcpt_options == []
    assert message.session == 1
    assert (message.smtputf8, message.tls, message.authenticated_as) == (
        False,
        False,
        None,
    )
    assert message.message()["Subject"] == "Hello"
    # Arguments are recorded as sent (smtplib's case varies between versions).
    assert [(s, verb, arg.upper()) for s, verb, arg in server.commands] == [
        (1, "EHLO", "CLIENT.EXAMPLE.COM"),
        (1, "MAIL", f"FROM:<A@EXAMPLE.COM> SIZE={len(MESSAGE)}"),
        (1, "RCPT", "TO:<B@EXAMPLE.COM>"),
        (1, "RCPT", "TO:<C@EXAMPLE.COM>"),
        (1, "DATA", ""),
        (1, "QUIT", ""),
    ]


def test_start_probe_is_not_counted_and_sessions_are_numbered() -> None:
    with SMTPTestServer() as server:
        assert (server.sessions, server.commands, server.messages) == (0, [], [])
        with connect(server) as first, connect(server) as second:
            first.noop()
            second.noop()
        assert server.sessions == 2
        assert sorted(s for s, verb, _ in server.commands if verb == "NOOP") == [1, 2]


def test_reset_forgets_records_and_faults(server: SMTPTestServer) -> None:
    send(server)
    server.fail("MAIL", "550 5.7.1 Sender rejected")
    server.reset()
    assert (server.messages, server.commands, server.sessions) == ([], [], 0)
    send(server)  # the fault is gone
    assert [m.session for m in server.messages] == [1]


def test_wait_for_messages(server: SMTPTestServer) -> None:
    sender = threading.Thread(target=send, args=(server,))
    sender.start()
    try:
        [message] = server.wait_for_messages(1, timeout=TIMEOUT)
    finally:
        sender.join()
    assert message.data == MESSAGE


def test_wait_for_messages_timeout_explains(server: SMTPTestServer) -> None:
    send(server)
    with pytest.raises(AssertionError, match="expected 2 message") as info:
        server.wait_for_messages(2, timeout=0.05)
    assert "a@example.com -> b@example.com" in str(info.value)
    assert "'RCPT'" in str(info.value)


def test_stop_closes_the_port_and_leaves_no_thread() -> None:
    threads = threading.active_count()
    server = SMTPTestServer()
    server.start()
    port = server.port
    assert threading.active_count() == threads + 1
    server.stop()
    server.stop()  # idempotent
    assert threading.active_count() == threads
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
    with pytest.raises(RuntimeError):
        server.port  # noqa: B018


def test_restart_on_a_new_port() -> None:
    server = SMTPTestServer()
    with server:
        send(server)
    with server:
        send(server)
    assert [m.session for m in server.messages] == [1, 2]


def test_help_still_works(server: SMTPTestServer) -> None:
    with connect(server) as client:
        assert b"MAIL" in client.help()


# -- TLS ------------------------------------------------------------------------


def test_starttls(certs: TLSCertificates) -> None:
    with SMTPTestServer(starttls=True, certs=certs) as server:
        with connect(server) as client:
            client.starttls(context=certs.client_context())
            client.sendmail("a@example.com", ["b@example.com"], MESSAGE)
        [message] = server.messages
        assert message.tls
        assert verbs(server) == [
            *("EHLO", "STARTTLS", "EHLO"),
            *("MAIL", "RCPT", "DATA", "QUIT"),
        ]


def test_starttls_creates_certificates_on_demand() -> None:
    with SMTPTestServer(starttls=True) as server:
        assert server.certs is not None
        context = ssl.create_default_context(cafile=server.certs.ca_file)
        with connect(server) as client:
            client.starttls(context=context)
            assert client.noop()[0] == 250


def test_implicit_tls(certs: TLSCertificates) -> None:
    with SMTPTestServer(implicit_tls=True, certs=certs) as server:
        with smtplib.SMTP_SSL(
            "localhost", server.port, context=certs.client_context(), timeout=TIMEOUT
        ) as client:
            client.sendmail("a@example.com", ["b@example.com"], MESSAGE)
        [message] = server.messages
        assert message.tls
        assert message.data == MESSAGE
        assert server.sessions == 1


@pytest.mark.parametrize("implicit_tls", [False, True])
def test_client_certificate_required(
    certs: TLSCertificates, implicit_tls: bool
) -> None:
    with SMTPTestServer(
        starttls=not implicit_tls,
        implicit_tls=implicit_tls,
        certs=certs,
        require_client_cert=True,
    ) as server:
        context = certs.client_context(client_cert=True)
        if implicit_tls:
            client = smtplib.SMTP_SSL(
                server.host, server.port, context=context, timeout=TIMEOUT
            )
        else:
            client = connect(server)
            client.starttls(context=context)
        with client:
            client.sendmail("a@example.com", ["b@example.com"], MESSAGE)
        assert server.client_cert_subjects == [certs.client_subject]
        assert "CN=hypermail test client" in certs.client_subject
        assert server.messages[0].tls


def test_client_certificate_missing_implicit_tls(certs: TLSCertificates) -> None:
    with SMTPTestServer(
        implicit_tls=True, certs=certs, require_client_cert=True
    ) as server:
        with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected)):
            smtplib.SMTP_SSL(
                server.host,
                server.port,
                context=certs.client_context(),
                timeout=TIMEOUT,
            ).close()
        assert server.client_cert_subjects == []


def test_client_certificate_missing_starttls(certs: TLSCertificates) -> None:
    with SMTPTestServer(starttls=True, certs=certs, require_client_cert=True) as server:
        with connect(server) as client:
            client.starttls(context=certs.client_context())
            assert client.ehlo()[0] == 554
        assert server.client_cert_subjects == []


def test_offer_starttls_ext_overrides_ehlo(certs: TLSCertificates) -> None:
    with SMTPTestServer(starttls=True, certs=certs, offer_starttls_ext=False) as server:
        with connect(server) as client:
            client.ehlo()
            assert not client.has_extn("starttls")
            client.esmtp_features["starttls"] = ""  # a client that tries anyway
            assert client.starttls(context=certs.client_context())[0] == 220
            assert client.noop()[0] == 250
        assert server.messages == []
        assert "STARTTLS" in verbs(server)
    with SMTPTestServer(offer_starttls_ext=True) as server, connect(server) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        assert client.docmd("STARTTLS")[0] == 454


# -- AUTH -----------------------------------------------------------------------

USERS = {"alice": "s3cret-pw"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_success_is_recorded_without_password(mechanism: str) -> None:
    with SMTPTestServer(auth=USERS, auth_require_tls=False) as server:
        with connect(server) as client:
            client.ehlo()
            client.user, client.password = "alice", "s3cret-pw"
            method = client.auth_plain if mechanism == "PLAIN" else client.auth_login
            assert client.auth(mechanism, method)[0] == 235
            client.sendmail("a@example.com", ["b@example.com"], MESSAGE)
        assert server.auth_attempts == [("alice", True)]
        assert server.messages[0].authenticated_as == "alice"
        assert (1, "AUTH", mechanism) in server.commands
        records = repr((server.commands, server.auth_attempts, server.messages))
        assert "s3cret-pw" not in records
        assert base64.b64encode(b"s3cret-pw").decode() not in records


def test_auth_failure_is_recorded(certs: TLSCertificates) -> None:
    with SMTPTestServer(starttls=True, certs=certs, auth=USERS) as server:
        with connect(server) as client:
            client.starttls(context=certs.client_context())
            with pytest.raises(smtplib.SMTPAuthenticationError) as info:
                client.login("alice", "wrong")  # tries PLAIN, then LOGIN
            assert info.value.smtp_code == 535
        assert server.auth_attempts == [("alice", False), ("alice", False)]


def test_auth_refused_before_tls(certs: TLSCertificates) -> None:
    with SMTPTestServer(starttls=True, certs=certs, auth=USERS) as server:
        plain = base64.b64encode(b"\0alice\0s3cret-pw").decode()
        with connect(server) as client:
            client.ehlo()
            assert not client.has_extn("auth")
            assert client.docmd("AUTH", f"PLAIN {plain}")[0] == 538
            client.starttls(context=certs.client_context())
            client.ehlo()
            assert client.has_extn("auth")
            client.login("alice", "s3cret-pw")
        assert server.auth_attempts == [("alice", True)]
        assert verbs(server).index("AUTH") < verbs(server).index("STARTTLS")


def test_no_auth_configured(server: SMTPTestServer) -> None:
    with connect(server) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN")[0] == 503


# -- fail() -----------------------------------------------------------------------


def test_fail_rcpt_with_match_hits_only_that_recipient(
    server: SMTPTestServer,
) -> None:
    server.fail("RCPT", "451 4.3.0 Try again later", times=1, match="B@example.com")
    refused = send(server, ["a@example.com", "b@example.com", "c@example.com"])
    assert refused == {"b@example.com": (451, b"4.3.0 Try again later")}
    assert server.messages[0].rcpt_tos == ["a@example.com", "c@example.com"]
    assert send(server, ["b@example.com"]) == {}  # used up
    assert server.messages[1].rcpt_tos == ["b@example.com"]


def test_fail_data_end_means_not_received(server: SMTPTestServer) -> None:
    server.fail("DATA_END", "451 4.3.0 Error after data", times=1)
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(server)
    assert info.value.smtp_code == 451
    assert server.messages == []
    send(server)
    assert len(server.messages) == 1


@pytest.mark.parametrize(
    ("verb", "reply", "error"),
    [
        ("MAIL", "550 5.7.1 Sender rejected", smtplib.SMTPSenderRefused),
        ("DATA", "452 4.3.1 Insufficient storage", smtplib.SMTPDataError),
        ("RCPT", "550 5.1.1 No such user", smtplib.SMTPRecipientsRefused),
    ],
)
def test_fail_commands(
    server: SMTPTestServer, verb: str, reply: str, error: type[Exception]
) -> None:
    server.fail(verb, reply)
    with pytest.raises(error):
        send(server)
    assert server.messages == []
    assert verb in verbs(server)


def test_fail_ehlo(server: SMTPTestServer) -> None:
    server.fail("EHLO", "421 4.3.2 Service not available")
    with connect(server) as client:
        assert client.ehlo() == (421, b"4.3.2 Service not available")


def test_fail_auth_before_credentials_are_checked() -> None:
    with SMTPTestServer(auth=USERS, auth_require_tls=False) as server:
        server.fail("AUTH", "454 4.7.0 Temporary authentication failure", times=1)
        with connect(server) as client:
            client.ehlo()
            client.user, client.password = "alice", "s3cret-pw"
            with pytest.raises(smtplib.SMTPAuthenticationError) as info:
                client.auth("PLAIN", client.auth_plain)
            assert info.value.smtp_code == 454
            assert server.auth_attempts == []
            client.auth("PLAIN", client.auth_plain)
        assert server.auth_attempts == [("alice", True)]


def test_fail_connect(server: SMTPTestServer) -> None:
    server.fail("CONNECT", "421 4.3.2 Too busy", times=1)
    with pytest.raises(smtplib.SMTPConnectError) as info:
        connect(server)
    assert (info.value.smtp_code, info.value.smtp_error) == (421, b"4.3.2 Too busy")
    send(server)
    assert server.sessions == 2


def test_fault_times_are_consistent_under_concurrency(
    server: SMTPTestServer,
) -> None:
    server.fail("MAIL", "451 4.3.0 Try again later", times=3)
    outcomes: list[bool] = []

    def attempt() -> None:
        try:
            send(server)
        except smtplib.SMTPSenderRefused:
            outcomes.append(False)
        else:
            outcomes.append(True)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [False] * 3 + [True] * 5
    assert len(server.messages) == 5


def test_fault_arguments_are_validated(server: SMTPTestServer) -> None:
    with pytest.raises(ValueError, match="unknown step"):
        server.fail("RCTP", "451 4.3.0 Typo")
    with pytest.raises(ValueError, match="reply"):
        server.fail("RCPT", "oops")
    with pytest.raises(ValueError, match="times"):
        server.drop("MAIL", times=0)
    server.fail("mail", "550 5.7.1 Lower-case verbs are fine")
    server.clear_faults()
    send(server)


def test_a_fault_built_beforehand_fires_like_fail(server: SMTPTestServer) -> None:
    busy = Fault(FaultKind.FAIL, "rcpt", times=1, reply="451 4.3.0 Busy")
    assert busy.verb == "RCPT"
    server.inject(busy)
    server.inject(busy)  # The same frozen fault, twice: two separate budgets.
    for _ in range(2):
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            send(server)
    send(server)
    assert verbs(server).count("RCPT") == 3
    assert len(server.messages) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        busy.times = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="seconds"):
        Fault(FaultKind.DELAY, "MAIL", seconds=-1)


# -- options ----------------------------------------------------------------------


def test_options_are_one_frozen_value_that_keywords_override(
    certs: TLSCertificates,
) -> None:
    relay = SMTPServerOptions(
        pipelining=True, chunking=True, auth={"u": "p"}, auth_require_tls=False
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        relay.chunking = False  # type: ignore[misc]
    with (
        SMTPTestServer(relay) as first,
        SMTPTestServer(relay, starttls=True, certs=certs) as second,
    ):
        assert first.options is relay
        assert (first.pipelining, first.chunking, first.starttls) == (True, True, False)
        assert (second.chunking, second.starttls, second.certs) == (True, True, certs)
        assert second.options.auth == {"u": "p"}
        for server in (first, second):
            with connect(server) as client:
                if server.starttls:
                    client.starttls(context=certs.client_context())
                client.ehlo()
                assert client.has_extn("chunking")
                assert client.has_extn("pipelining")
                assert client.has_extn("starttls") is False
                client.login("u", "p")
        assert [a.success for a in second.auth_attempts] == [True]


def test_options_are_validated_however_they_are_given() -> None:
    with pytest.raises(ValueError, match="choose one"):
        SMTPServerOptions(starttls=True, implicit_tls=True)
    with pytest.raises(ValueError, match="choose one"):
        SMTPTestServer(SMTPServerOptions(starttls=True), implicit_tls=True)
    with pytest.raises(ValueError, match="require_client_cert"):
        SMTPTestServer(require_client_cert=True)
    with pytest.raises(TypeError, match="colour"):
        SMTPTestServer(colour="blue")


def test_a_tls_server_gets_certificates_when_none_are_given() -> None:
    options = SMTPServerOptions(implicit_tls=True)
    server = SMTPTestServer(options)
    assert options.certs is None  # the shared value is left alone
    assert isinstance(server.certs, TLSCertificates)
    assert server.certs is server.options.certs


# -- drop(), delay(), hang() ------------------------------------------------------


def test_drop_closes_the_connection(server: SMTPTestServer) -> None:
    server.drop("MAIL", times=1)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send(server)
    assert verbs(server).count("MAIL") == 1
    send(server)  # used up
    assert [m.session for m in server.messages] == [2]


def test_drop_data_end_means_not_received(server: SMTPTestServer) -> None:
    server.drop("DATA_END", times=1)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        send(server)
    assert server.messages == []


def test_drop_connect(server: SMTPTestServer) -> None:
    server.drop("CONNECT", times=1)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        connect(server)
    assert server.sessions == 1


def test_delay(server: SMTPTestServer) -> None:
    server.delay("MAIL", 0.2, times=1)
    with connect(server) as client:
        client.ehlo()
        started = time.monotonic()
        assert client.mail("a@example.com")[0] == 250
        # A little slack for timer granularity; no upper bound on a busy CI box.
        assert time.monotonic() - started >= 0.19
    assert "MAIL" in verbs(server)


def test_delay_then_fail(server: SMTPTestServer) -> None:
    server.delay("RCPT", 0.1, times=1)
    server.fail("RCPT", "450 4.2.0 Mailbox busy", times=1)
    started = time.monotonic()
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(server)
    assert time.monotonic() - started >= 0.09


def test_hang_until_the_client_times_out(server: SMTPTestServer) -> None:
    server.hang("DATA_END", times=1)
    started = time.monotonic()
    with (
        pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"),
        connect(server, timeout=0.3) as client,
    ):
        client.sendmail("a@example.com", ["b@example.com"], MESSAGE)
    assert time.monotonic() - started >= 0.29
    assert server.messages == []
    send(server)
    assert len(server.messages) == 1


def closed_by_server(sock: socket.socket) -> bool:
    """Whether the server has closed this connection: a read ends at once with
    end-of-file or a reset, instead of waiting for data (``TIMEOUT`` is only
    the time to give up on a connection that is still open)."""
    sock.settimeout(TIMEOUT)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_stop_does_not_wait_for_hung_or_idle_clients() -> None:
    server = SMTPTestServer()
    server.start()
    server.hang("NOOP")
    idle = connect(server)
    # Longer than any wait of the test: had stop() waited for this client, it
    # would have returned only once the client gave up, with a timeout.
    hung = connect(server, timeout=60)
    port = server.port
    errors: list[Exception] = []

    def noop() -> None:
        try:
            hung.noop()
        except Exception as error:
            errors.append(error)

    noop_thread = threading.Thread(target=noop)
    noop_thread.start()
    try:
        while "NOOP" not in verbs(server):
            time.sleep(0.01)
        server.stop()
        # The server closed both connections itself: the idle client finds
        # its connection closed, the hung one's NOOP ends with the connection
        # gone, not with its own timeout.
        assert idle.sock is not None and closed_by_server(idle.sock)
        noop_thread.join(timeout=TIMEOUT)
        assert not noop_thread.is_alive()
        assert [type(e) for e in errors] == [smtplib.SMTPServerDisconnected]
        assert not isinstance(errors[0].__context__, TimeoutError)
        assert "timed out" not in str(errors[0])
        # And the listener is closed: the port can be bound again.
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind((server.host, port))
            again.listen()
    finally:
        idle.close()
        hung.close()


def test_stop_does_not_wait_for_clients_stuck_in_a_tls_handshake(
    certs: TLSCertificates,
) -> None:
    implicit = SMTPTestServer(implicit_tls=True, certs=certs)
    starttls = SMTPTestServer(starttls=True, certs=certs)
    implicit.start()
    starttls.start()
    with (
        socket.create_connection((implicit.host, implicit.port)) as raw,
        connect(starttls) as client,
    ):
        client.ehlo()
        assert client.docmd("STARTTLS")[0] == 220  # and no handshake follows
        implicit.stop()
        starttls.stop()
        # stop() returned, and closed both connections rather than waiting
        # for handshakes that never come.
        assert closed_by_server(raw)
        assert client.sock is not None and closed_by_server(client.sock)
        assert not implicit.running and not starttls.running


class HeldLoop:
    """Holds a test server's event loop in one callback until released, so a
    test can line up what the loop finds in its next turns."""

    def __init__(self, server: SMTPTestServer) -> None:
        assert server._controller is not None
        self.loop = server._controller.loop
        self.held = threading.Event()
        self.release = threading.Event()
        self.loop.call_soon_threadsafe(self._hold)
        assert self.held.wait(TIMEOUT)

    def _hold(self) -> None:
        self.held.set()
        self.release.wait(TIMEOUT)

    def hold_again(self) -> HeldLoop:
        """Queue a second hold behind what is queued now, then release this one."""
        again = HeldLoop.__new__(HeldLoop)
        again.loop, again.held, again.release = (
            self.loop,
            threading.Event(),
            threading.Event(),
        )
        self.loop.call_soon_threadsafe(again._hold)
        self.release.set()
        assert again.held.wait(TIMEOUT)
        return again


@pytest.mark.parametrize("connect_while", ["stop is queued", "stop has begun"])
def test_stop_closes_a_connection_accepted_as_it_begins(
    certs: TLSCertificates, connect_while: str
) -> None:
    """A client connecting to an implicit-TLS server in the loop turns where
    stop() begins: stop() still closes its connection, and leaves no socket or
    transport for the collector (which warns "unclosed", failing the test).

    The loop is held while the client connects, so what it finds next is fixed:
    either the new connection and stop's coroutine in the same turn, or stop's
    first step and the new connection in the next one. One gets a handshake
    task that starts before the server closes, the other one that is cancelled
    before it starts (the socket then has no owner but the listener)."""
    server = SMTPTestServer(implicit_tls=True, certs=certs)
    server.start()
    controller = server._controller
    assert controller is not None and controller.server is not None
    hold = HeldLoop(server)
    try:
        if connect_while == "stop is queued":
            raw = socket.create_connection((server.host, server.port))
        stopping = asyncio.run_coroutine_threadsafe(
            controller._close_sessions(controller.server), controller.loop
        )
        if connect_while == "stop has begun":
            hold = hold.hold_again()  # stop's task is created; its step is next
            raw = socket.create_connection((server.host, server.port))
        hold.release.set()
        with raw:
            stopping.result(timeout=TIMEOUT)
            assert closed_by_server(raw)
    finally:
        hold.release.set()
        server.stop()
    assert not server.running


def test_connections_send_replies_at_once(server: SMTPTestServer) -> None:
    """The server's side of a connection has TCP_NODELAY, as asyncio sets on
    TCP connections: without it each reply written in pieces waits for the
    client's delayed ACK, and every test and benchmark slows down."""
    with connect(server) as client:
        client.ehlo()
        controller = server._controller
        assert controller is not None and controller._listener is not None
        assert client.sock is not None
        ours = client.sock.getsockname()
        (accepted,) = [
            conn
            for conn in controller._listener.accepted
            if conn.fileno() != -1 and conn.getpeername() == ours
        ]
        nodelay = accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert nodelay != 0


def test_drop_all_connections(server: SMTPTestServer) -> None:
    with connect(server) as first, connect(server) as second:
        first.ehlo()
        second.ehlo()
        server.drop_all_connections()
        with pytest.raises(smtplib.SMTPServerDisconnected):
            first.noop()
        with pytest.raises(smtplib.SMTPServerDisconnected):
            second.mail("a@example.com")
    send(server)  # the server itself keeps accepting
    assert server.sessions == 3


def test_drop_all_connections_tls(certs: TLSCertificates) -> None:
    with SMTPTestServer(starttls=True, certs=certs) as server, connect(server) as c:
        c.starttls(context=certs.client_context())
        c.ehlo()
        server.drop_all_connections()
        with pytest.raises(smtplib.SMTPServerDisconnected):
            c.noop()


def test_reply_delay() -> None:
    with SMTPTestServer(reply_delay=0.1) as server:
        started = time.monotonic()
        with connect(server) as client:  # greeting
            client.ehlo()  # one multi-line reply, delayed once
            client.noop()
            assert time.monotonic() - started >= 0.29
        assert verbs(server) == ["EHLO", "NOOP", "QUIT"]


# -- SMTPUTF8 -----------------------------------------------------------------------


def test_smtputf8_non_ascii_local_part(server: SMTPTestServer) -> None:
    data = "Subject: Grüße\r\n\r\nHallo\r\n".encode()
    with connect(server) as client:
        client.sendmail(
            "jürgen@example.com", ["zoë@example.com"], data, mail_options=["SMTPUTF8"]
        )
    [message] = server.messages
    assert message.smtputf8
    assert message.mail_from == "jürgen@example.com"
    assert message.rcpt_tos == ["zoë@example.com"]
    assert "SMTPUTF8" in message.mail_options
    assert message.data == data


def test_smtputf8_can_be_turned_off() -> None:
    with SMTPTestServer(smtputf8=False) as server, connect(server) as client:
        client.ehlo()
        assert not client.has_extn("smtputf8")


def test_server_can_come_back_on_a_fixed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = SMTPTestServer(port=port)
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP("127.0.0.1", port, timeout=5)  # down: nothing listens yet
    server.start()
    try:
        assert server.port == port
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.sendmail(
                "a@example.com", ["b@example.com"], b"Subject: x\r\n\r\nbody"
            )
        server.stop()
        server.start()  # back on the same port
        assert server.port == port
    finally:
        server.stop()
    assert len(server.messages) == 1


def test_round_trip_delay_is_paid_once_per_flight_of_client_data():
    pipelined_commands = (
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
    )
    with (
        SMTPTestServer(round_trip_delay=0.001, pipelining=True) as server,
        smtplib.SMTP(server.host, server.port, timeout=5) as client,
    ):
        client.ehlo()
        before = server.round_trips  # greeting and EHLO: two flights
        client.send(pipelined_commands)
        replies = [client.getreply()[0] for _ in range(3)]
        pipelined = server.round_trips - before
        before = server.round_trips
        client.send(b"Subject: x\r\n\r\nbody\r\n.\r\n")
        assert client.getreply()[0] == 250
        client.mail("a@example.com")
        client.rcpt("b@example.com")
        one_by_one = server.round_trips - before
    assert replies == [250, 250, 354]
    assert pipelined == 1  # three commands in one flight: one round trip
    assert one_by_one == 3  # end of data, MAIL, RCPT: one each


# -- RFC 3030 CHUNKING ----------------------------------------------------------


def bdat(size: int, last: bool = False) -> bytes:
    return b"BDAT %d%s\r\n" % (size, b" LAST" if last else b"")


@pytest.fixture
def chunking_server() -> Iterator[SMTPTestServer]:
    with SMTPTestServer(chunking=True, pipelining=True) as server:
        yield server


def test_chunking_is_advertised_only_when_asked(server: SMTPTestServer) -> None:
    with connect(server) as client:
        client.ehlo()
        assert not client.has_extn("chunking")
        client.send(bdat(0, last=True))
        assert client.getreply()[0] == 500  # unknown, as in aiosmtpd
    with SMTPTestServer(chunking=True) as chunking, connect(chunking) as client:
        client.ehlo()
        assert client.has_extn("chunking")


def test_chunks_make_one_message_byte_for_byte(chunking_server) -> None:
    head, tail = MESSAGE[:20], MESSAGE[20:]
    with connect(chunking_server) as client:
        client.ehlo()
        client.send(
            b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
            + bdat(len(head))
            + head
            + bdat(len(tail), last=True)
            + tail
        )
        replies = [client.getreply() for _ in range(4)]
    assert [code for code, _ in replies] == [250, 250, 250, 250]
    assert replies[2][1] == b"2.0.0 20 octets received"
    (received,) = chunking_server.messages
    # Neither dot-stuffed nor unstuffed: the octets are the message.
    assert received.data == MESSAGE
    assert received.rcpt_tos == ["b@example.com"]
    assert verbs(chunking_server)[-3:] == ["BDAT", "BDAT", "QUIT"]


def test_refused_chunks_are_still_read_and_refused_until_rset(chunking_server) -> None:
    with connect(chunking_server) as client:
        client.ehlo()
        # No MAIL yet: refused, and its octets (which look like commands) skipped.
        client.send(bdat(6, last=True) + b"QUIT\r\n")
        assert client.getreply()[0] == 503
        client.send(b"MAIL FROM:<a@example.com>\r\n" + bdat(3) + b"abc")
        assert client.getreply()[0] == 250
        assert client.getreply() == (554, b"5.5.1 Error: no valid recipients")
        client.send(b"RCPT TO:<b@example.com>\r\n" + bdat(3, last=True) + b"def")
        assert client.getreply()[0] == 250
        assert client.getreply()[0] == 503  # a chunk of this message was refused
        assert client.rset()[0] == 250
        client.sendmail("a@example.com", ["b@example.com"], MESSAGE)  # clean again
    assert len(chunking_server.messages) == 1


@pytest.mark.parametrize(
    ("verb", "expected"),
    [("DATA", [451, 503]), ("BDAT", [451, 503]), ("DATA_END", [250, 451])],
)
def test_faults_fire_at_the_chunk_steps(chunking_server, verb, expected) -> None:
    """DATA and BDAT refuse the first chunk (so the rest too); DATA_END the last."""
    chunking_server.fail(verb, "451 4.3.0 Try again", times=1)
    with connect(chunking_server) as client:
        client.ehlo()
        client.mail("a@example.com")
        client.rcpt("b@example.com")
        client.send(bdat(2) + b"ab" + bdat(1, last=True) + b"c")
        codes = [client.getreply()[0] for _ in range(2)]
    assert codes == expected
    assert chunking_server.messages == []


def test_a_chunk_over_the_size_limit_is_refused_without_being_kept() -> None:
    with SMTPTestServer(chunking=True) as server:
        with connect(server) as client:
            client.ehlo()
            limit = int(client.esmtp_features["size"])
            client.mail("a@example.com")
            client.rcpt("b@example.com")
            client.send(bdat(limit + 1, last=True))
            client.send(b"x" * (limit + 1))
            assert client.getreply()[0] == 552
            assert client.noop()[0] == 250  # the octets did not become commands
        assert server.messages == []


def test_the_shared_test_server_example_runs() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "examples/shared_test_server.py"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == [
        "greylisted once, sent after 2 MAIL commands",
        "attempts recorded on the message: 2",
        "relay: chunking=True starttls=False",
        "tls relay: chunking=True starttls=True",
    ]
