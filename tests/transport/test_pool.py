"""The shared transport: reuse, dead connections, retirement, threads, fork, exit."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest
from django.core import mail
from django.core.mail import EmailMessage

from hypermail_django.transport import close_all_pools, get_pool

from ..conftest import PASSWORD


def _message(n: int = 0) -> EmailMessage:
    return EmailMessage(
        f"Message {n}", "Body", "from@example.com", [f"to{n}@example.com"]
    )


def test_connection_outlives_the_backend_instance(use_server):
    for n in range(5):
        mail.send_mail(f"Call {n}", "Body", "from@example.com", ["to@example.com"])
    assert len(use_server.messages) == 5
    assert use_server.sessions == 1  # Django makes a new backend per call


def test_dropped_idle_connection_is_replaced_transparently(server, make_backend):
    make_backend().send_messages([_message(1)])
    server.drop_all_connections()  # the server's idle timeout
    message = _message(2)
    assert make_backend(max_retries=0).send_messages([message]) == 1
    assert message.hypermail_status.attempts == 1
    assert server.sessions == 2
    assert len(server.messages) == 2


def test_server_closing_with_421_on_reuse_is_replaced_transparently(
    server, make_backend
):
    make_backend().send_messages([_message(1)])
    server.fail("MAIL", "421 4.4.2 Idle timeout, closing", times=1)
    assert make_backend(max_retries=0).send_messages([_message(2)]) == 1
    assert len(server.messages) == 2


def test_connection_retired_after_max_messages(server, make_backend):
    backend = make_backend(max_messages_per_connection=2)
    for n in range(5):
        backend.send_messages([_message(n)])
    assert len(server.messages) == 5
    assert server.sessions == 3
    quits = [c for c in server.commands if c[1] == "QUIT"]
    assert len(quits) == 2  # retired politely


def test_connection_retired_after_max_messages_within_one_batch(server, make_backend):
    backend = make_backend(max_messages_per_connection=2)
    assert backend.send_messages([_message(n) for n in range(5)]) == 5
    assert server.sessions == 3
    with backend:  # takes the idle connection, which has room for one more
        backend.send_messages([_message(n) for n in range(5)])
    assert server.sessions == 5


def test_connection_retired_after_max_age(server, make_backend):
    backend = make_backend(max_connection_age=0)
    for n in range(3):
        backend.send_messages([_message(n)])
    assert server.sessions == 3


def test_pool_size_zero_connects_per_call_like_django(server, make_backend):
    for n in range(3):
        make_backend(pool_size=0).send_messages([_message(n)])
    assert server.sessions == 3


def test_explicitly_opened_backend_keeps_one_connection_for_the_batch(
    server, make_backend
):
    backend = make_backend()
    with backend:
        assert backend.connection is not None
        held = backend.connection
        for n in range(3):
            backend.send_messages([_message(n)])
        assert backend.connection is held
    assert backend.connection is None
    assert server.sessions == 1
    assert len(server.messages) == 3


def test_open_returns_like_djangos(make_backend):
    backend = make_backend()
    assert backend.open() is True
    assert backend.open() is False
    backend.close()
    backend.close()  # closing twice is fine


def test_open_raises_when_the_server_is_down(make_backend, server):
    backend = make_backend()
    server.stop()
    with pytest.raises(OSError):  # what code written for Django's backend catches
        backend.open()


def test_threads_share_the_pool_but_never_a_connection(server, make_backend):
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for n in range(5):
                make_backend().send_messages([_message(index * 10 + n)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(server.messages) == 40
    # A connection used by two threads at once would interleave commands and break
    # the SMTP conversation; every session must read MAIL, RCPT, DATA in order.
    by_session: dict[int, list[str]] = {}
    for session, verb, _arg in server.commands:
        by_session.setdefault(session, []).append(verb)
    for verbs in by_session.values():
        flow = [v for v in verbs if v in {"MAIL", "RCPT", "DATA"}]
        assert flow == ["MAIL", "RCPT", "DATA"] * (len(flow) // 3)
    assert server.sessions <= 8


def test_one_ssl_context_per_configuration(make_backend):
    first = make_backend(use_tls=True)
    second = make_backend(use_tls=True)
    other = make_backend(use_tls=True, username="someone", password=PASSWORD)
    assert first.ssl_context is second.ssl_context
    assert first.ssl_context is not other.ssl_context


def test_backends_that_differ_only_in_retries_share_the_pool(make_backend):
    assert get_pool(make_backend(max_retries=0).transport_config) is get_pool(
        make_backend(max_retries=5).transport_config
    )


@pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)
def test_forked_child_never_touches_the_parents_connection(server, make_backend):
    make_backend().send_messages([_message(1)])
    assert server.sessions == 1
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child process
        code = 1
        try:
            make_backend().send_messages([_message(2)])
            code = 0
        finally:
            os._exit(code)
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    assert server.sessions == 2  # the child opened its own
    make_backend().send_messages([_message(3)])
    assert server.sessions == 2  # and the parent's connection survived it
    first_session = [verb for session, verb, _ in server.commands if session == 1]
    assert "QUIT" not in first_session
    assert len(server.messages) == 3


def test_close_all_pools_says_quit(server, make_backend):
    make_backend().send_messages([_message(1)])
    close_all_pools()
    assert server.commands[-1][1] == "QUIT"


def test_pooled_connections_are_closed_with_quit_at_exit(server):
    script = textwrap.dedent(
        f"""
        import django
        from django.conf import settings
        settings.configure(DEFAULT_FROM_EMAIL="from@example.com")
        django.setup()
        from django.core.mail import EmailMessage
        from hypermail_django.backends import FluxMailBackend
        backend = FluxMailBackend(host={server.host!r}, port={server.port})
        message = EmailMessage("Exit", "Body", to=["a@example.com"])
        assert backend.send_messages([message]) == 1
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    server.wait_for_messages(1)
    assert [verb for _, verb, _ in server.commands][-1] == "QUIT"


def test_goodbye_to_a_hung_server_does_not_hold_up_exit(server, make_backend):
    # With a 10-minute timeout, an unbounded QUIT would outlast pytest-timeout.
    make_backend(timeout=600).send_messages([_message(1)])
    server.hang("QUIT")
    close_all_pools()
    assert server.commands[-1][1] == "QUIT"
