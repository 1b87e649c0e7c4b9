"""Bulk sending: lazy, parallel, rate-limited, and every message counted once."""

from __future__ import annotations

import email
import email.policy
import io
import itertools
import logging
import os
from collections import Counter

import django
import pytest
from django.core.mail import EmailMessage, EmailMultiAlternatives

from hypermail_django.bulk import rate, send_bulk
from hypermail_django.bulk import workers as workers_module
from hypermail_django.bulk.rate import RateLimiter
from hypermail_django.exceptions import FluxMailException, InvalidEmail

from ..conftest import mailer_for


def _messages(count: int, bad: set[int] = frozenset(), start: int = 0):
    for n in range(start, start + count):
        to = f"bad{n}@example.com" if n in bad else f"user{n}@example.com"
        yield EmailMessage(f"Digest {n}", f"Hello {n}", "news@example.com", [to])


@pytest.fixture
def workers(monkeypatch):
    """Serialize in worker processes even under ``override_settings``.

    ``mailer_for`` overrides settings at run time, which worker processes would
    not see, so ``send_bulk`` serializes in this process then. These tests
    override nothing that serialization reads, so workers may take part.
    """
    from hypermail_django.bulk import preparation

    monkeypatch.setattr(preparation, "_settings_module", lambda: "tests.settings")
    assert preparation.worker_count(2) == 2


@pytest.mark.parametrize("processes", [0, 2])
def test_every_message_is_delivered_once(use_server, workers, processes):
    result = send_bulk(_messages(120), processes=processes, progress=False)
    assert result == {
        "sent": 120,
        "failed": 0,
        "skipped": 0,
        "total": 120,
        "errors": [],
        "suppressed": 0,
    }
    delivered = Counter(r for m in use_server.messages for r in m.rcpt_tos)
    assert set(delivered) == {f"user{n}@example.com" for n in range(120)}
    assert set(delivered.values()) == {1}


def test_refusals_and_dropped_connections_are_each_counted_exactly_once(
    server, workers
):
    bad = {3, 17, 40, 41, 99}
    server.fail("RCPT", "550 5.1.1 No such user", match="bad")
    server.drop("DATA_END", times=4)  # connections dropped mid-batch
    successes, failures = [], []
    # A drop after the content is uncertain; this server never queued those,
    # so retrying them (retry_uncertain) delivers each exactly once.
    with mailer_for(server, max_retries=2, retry_delay=0.0, retry_uncertain=True):
        result = send_bulk(
            _messages(100, bad=bad),
            concurrency=3,
            on_success=lambda i, status: successes.append(i),
            on_error=lambda i, error: failures.append(i),
            progress=False,
        )
    assert result["total"] == 100
    assert result["sent"] == 95 and result["failed"] == 5
    assert sorted(failures) == sorted(bad)
    assert sorted(i for i, _ in result["errors"]) == sorted(bad)
    assert all(e.code == "recipients_refused" for _, e in result["errors"])
    assert sorted(successes + failures) == list(range(100))
    delivered = Counter(r for m in server.messages for r in m.rcpt_tos)
    assert sum(delivered.values()) == 95
    assert set(delivered.values()) == {1}  # no duplicates despite the drops


def test_uncertain_messages_are_counted_failed_and_never_resent(server, workers):
    server.drop("DATA_END", times=3)
    with mailer_for(server, max_retries=2, retry_delay=0.0):
        result = send_bulk(_messages(30), concurrency=2, progress=False)
    assert (result["sent"], result["failed"], result["total"]) == (27, 3, 30)
    assert [e.code for _, e in result["errors"]] == ["delivery_uncertain"] * 3
    assert len(server.messages) == 27
    body = "BDAT" if server.chunking else "DATA"
    assert sum(1 for _, verb, _ in server.commands if verb == body) == 30


def test_invalid_and_empty_messages_do_not_stop_the_batch(use_server, workers):
    messages = [
        EmailMessage("ok", "b", "f@example.com", ["a@example.com"]),
        EmailMessage(
            "evil", "b", "f@example.com", ["a@example.com\nBcc: x@example.com"]
        ),
        EmailMessage("nobody", "b", "f@example.com", []),
        EmailMessage("ok2", "b", "f@example.com", ["b@example.com"]),
    ]
    result = send_bulk(messages, processes=2, progress=False)
    assert (result["sent"], result["failed"], result["skipped"]) == (2, 1, 1)
    ((index, error),) = result["errors"]
    assert index == 1
    assert isinstance(error, InvalidEmail)
    assert error.code == "invalid_email"
    assert messages[0].hypermail_status.status == "sent"
    assert len(use_server.messages) == 2


def test_messages_are_read_lazily(use_server, workers):
    produced = []
    first_success_at = []

    def generate():
        for message in _messages(1500):
            produced.append(1)
            yield message

    def on_success(index, status):
        if not first_success_at:
            first_success_at.append(len(produced))

    result = send_bulk(generate(), processes=2, on_success=on_success, progress=False)
    assert result["sent"] == 1500
    assert first_success_at[0] < 400  # a bounded window, not the whole generator


def test_bytes_from_worker_processes_equal_djangos(use_server, workers):
    headers = {
        "Message-ID": "<fixed@example.com>",
        "Date": "Mon, 1 Jan 2024 00:00:00 -0000",
    }
    message = EmailMessage(
        "Same ✓", "Body ✓", "f@example.com", ["a@example.com"], headers=headers
    )
    send_bulk([message], processes=2, progress=False)
    (received,) = use_server.messages
    if django.VERSION >= (6, 0):
        expected = message.message(policy=email.policy.SMTP).as_bytes()
    else:
        expected = message.message().as_bytes(linesep="\r\n")
    if not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert received.data == expected


def _django_bytes(message: EmailMessage) -> bytes:
    """What Django's own SMTP backend puts after DATA for ``message``."""
    if django.VERSION >= (6, 0):
        data = message.message(policy=email.policy.SMTP).as_bytes()
    else:
        data = message.message().as_bytes(linesep="\r\n")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _with_boundary_of(data: bytes, like: bytes) -> bytes:
    """``data`` with its MIME boundary replaced by the one in ``like``: each
    serialization draws a random boundary, and nothing else may differ."""
    ours = email.message_from_bytes(data).get_boundary()
    theirs = email.message_from_bytes(like).get_boundary()
    assert ours and theirs
    return data.replace(ours.encode(), theirs.encode())


@pytest.mark.parametrize("processes", [0, 2])
def test_every_message_of_a_long_run_arrives_as_django_serializes_it(
    use_server, workers, processes
):
    """Longer than a chunk, multipart like a newsletter, each message to its
    own recipient: the bytes received are Django's, message by message."""
    messages = []
    for n in range(75):
        message = EmailMultiAlternatives(
            f"Digest {n} ✓",
            f"Hello {n} ✓\n.a line that needs dot-stuffing\n",
            "news@example.com",
            [f"user{n}@example.com"],
            headers={
                "Message-ID": f"<digest-{n}@example.com>",
                "Date": "Mon, 1 Jan 2024 00:00:00 -0000",
            },
        )
        message.attach_alternative(f"<p>Hello {n} ✓</p>", "text/html")
        messages.append(message)
    result = send_bulk(messages, processes=processes, progress=False)
    assert result["sent"] == 75
    received = {m.rcpt_tos[0]: m.data for m in use_server.messages}
    assert len(received) == len(use_server.messages) == 75
    for n, message in enumerate(messages):
        expected = _django_bytes(message)
        got = received[f"user{n}@example.com"]
        assert _with_boundary_of(got, expected) == expected
        assert message.hypermail_status.message_id == f"<digest-{n}@example.com>"


def test_a_short_run_is_spread_over_every_connection(use_server, workers):
    # Fewer messages than a chunk of work still go out on all four connections.
    result = send_bulk(_messages(40), concurrency=4, processes=2, progress=False)
    assert result["sent"] == 40
    assert len({m.session for m in use_server.messages}) == 4


def test_a_transient_failure_is_retried_under_the_policy(server, waits, caplog):
    server.fail("MAIL", "451 4.3.0 Try again later", times=1)
    statuses = {}
    with (
        mailer_for(server, max_retries=2, retry_delay=0.0),
        caplog.at_level(logging.WARNING, logger="hypermail_django.transport"),
    ):
        result = send_bulk(
            _messages(3),
            concurrency=1,
            on_success=statuses.__setitem__,
            progress=False,
        )
    assert (result["sent"], result["failed"]) == (3, 0)
    assert [statuses[i].attempts for i in range(3)] == [2, 1, 1]
    assert len(waits) == 1
    (retry,) = [r.getMessage() for r in caplog.records if "retrying" in r.msg]
    assert "attempt 1 failed" in retry
    assert "451 4.3.0 Try again later" in retry
    assert len(server.messages) == 3


def test_a_permanent_failure_is_never_retried(server, waits):
    server.fail("MAIL", "550 5.7.1 Not from you", times=1)
    with mailer_for(server, max_retries=2, retry_delay=0.0):
        result = send_bulk(_messages(3), concurrency=1, progress=False)
    assert (result["sent"], result["failed"]) == (2, 1)
    ((index, error),) = result["errors"]
    assert index == 0
    assert error.smtp_code == 550
    assert error.status.attempts == 1
    assert waits == []


def test_other_backends_are_sent_one_by_one():
    from django.core import mail

    mail.outbox = []
    with mailer_for(backend="django.core.mail.backends.locmem.EmailBackend"):
        outcome = send_bulk(_messages(5), progress=False)
    assert outcome["sent"] == 5
    assert len(mail.outbox) == 5


def test_negative_rate_is_refused():
    with pytest.raises(FluxMailException) as caught:
        send_bulk([], max_per_second=-1)
    assert caught.value.code == "invalid_params"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def _max_in_any_window(slots, window=1.0):
    slots = sorted(slots)
    return max(
        sum(1 for t in slots if start <= t < start + window - 1e-9) for start in slots
    )


def test_rate_limit_holds_over_every_one_second_window(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(rate, "monotonic", clock.monotonic)
    monkeypatch.setattr(rate, "sleep", clock.sleep)
    limiter = RateLimiter(10)
    starts = []
    for _ in range(35):
        limiter.acquire()
        starts.append(clock.now)
        clock.now += 0.013  # the send itself takes a little time
    assert _max_in_any_window(starts) == 10
    assert starts[-1] - starts[0] >= 3.0


def test_fractional_rate(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(rate, "monotonic", clock.monotonic)
    monkeypatch.setattr(rate, "sleep", clock.sleep)
    limiter = RateLimiter(0.5)
    starts = []
    for _ in range(4):
        limiter.acquire()
        starts.append(clock.now)
    assert [b - a for a, b in itertools.pairwise(starts)] == [2.0, 2.0, 2.0]


def test_rate_limit_applies_across_connections(use_server, monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(rate, "monotonic", clock.monotonic)
    slots = []
    limiter_reserve = RateLimiter.reserve

    def recording_reserve(self):
        wait = limiter_reserve(self)
        slots.append(clock.now + wait)
        return wait

    monkeypatch.setattr(RateLimiter, "reserve", recording_reserve)
    monkeypatch.setattr(rate, "sleep", lambda seconds: None)
    result = send_bulk(_messages(40), concurrency=4, max_per_second=8, progress=False)
    assert result["sent"] == 40
    assert len(slots) == 40
    assert _max_in_any_window(slots) == 8


def test_progress_bar_shows_sent_and_failed(use_server, monkeypatch):
    from rich.console import Console

    from hypermail_django.bulk import progress as progress_module

    out = io.StringIO()
    monkeypatch.setattr(
        progress_module,
        "Progress",
        _progress_to(out, progress_module.Progress, Console),
    )
    send_bulk(_messages(5), progress=True, processes=0)
    text = out.getvalue()
    assert "5 sent" in text
    assert "0 failed" in text


def _progress_to(stream, progress_class, console_class):
    def make(*columns, **kwargs):
        return progress_class(
            *columns, console=console_class(file=stream, force_terminal=False), **kwargs
        )

    return make


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_pools")
@pytest.mark.parametrize("processes", [0, 2])
async def test_asend_bulk_accounts_for_every_message_once(server, workers, processes):
    from hypermail_django.bulk import asend_bulk
    from hypermail_django.transport.async_pool import aclose_async_pools

    bad = {2, 30}
    server.fail("RCPT", "550 5.1.1 No such user", match="bad")
    server.drop("DATA_END", times=2)
    statuses = []

    async def on_post_send(sender, message, status, **kwargs):
        statuses.append(status)

    from hypermail_django import signals

    signals.post_send.connect(on_post_send)
    try:
        with mailer_for(server, max_retries=2, retry_delay=0.0, retry_uncertain=True):
            result = await asend_bulk(
                _messages(60, bad=bad),
                concurrency=3,
                processes=processes,
                progress=False,
            )
        await aclose_async_pools()
    finally:
        signals.post_send.disconnect(on_post_send)
    assert (result["sent"], result["failed"], result["total"]) == (58, 2, 60)
    assert sorted(i for i, _ in result["errors"]) == sorted(bad)
    assert len(statuses) == 58  # the async receiver was awaited for each
    delivered = Counter(r for m in server.messages for r in m.rcpt_tos)
    assert sum(delivered.values()) == 58
    assert set(delivered.values()) == {1}


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_pools")
async def test_asend_bulk_with_other_backends():
    from django.core import mail

    from hypermail_django.bulk import asend_bulk

    mail.outbox = []
    with mailer_for(backend="django.core.mail.backends.locmem.EmailBackend"):
        result = await asend_bulk(_messages(4), progress=False)
    assert result["sent"] == 4
    assert len(mail.outbox) == 4


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
def test_serializing_on_one_cpu_uses_two_connections_by_default(use_server):
    """Pinned to one CPU, ``send_bulk`` serializes in its own process, and more
    sender threads would only take turns on that CPU: two connections; asked
    for, any number."""

    def sessions_of_run(number: int) -> set[int]:
        run = use_server.messages[number * 60 : (number + 1) * 60]
        assert len(run) == 60
        return {message.session for message in run}

    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # This thread, and the ones it starts.
    try:
        assert send_bulk(_messages(60), processes=0, progress=False)["sent"] == 60
        assert len(sessions_of_run(0)) == 2
        assert send_bulk(_messages(60), concurrency=3, progress=False)["sent"] == 60
        assert len(sessions_of_run(1)) == 3
    finally:
        os.sched_setaffinity(0, cpus)
    if len(cpus) > 1 and (workers_module.cgroup_cpu_quota() or 2) >= 2:
        assert send_bulk(_messages(60), processes=0, progress=False)["sent"] == 60
        assert len(sessions_of_run(2)) == 4
