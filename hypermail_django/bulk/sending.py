"""``send_bulk``: many messages, every core, several connections, one tally.

The caller's thread reads the messages lazily and has them prepared (see
:mod:`.preparation`); ``concurrency`` sender threads, each holding one pooled
connection, deliver the envelopes under the mailer's retry policy and the shared
rate limit; outcomes come back to the caller's thread, which counts them. One
bad message (a 550, an invalid address) is counted and reported, never stops
the batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Sized
from typing import Any

from django.core.mail import EmailMessage

from ..exceptions import FluxMailException
from ..mailers import get_mailer
from ..transport import Lease, TransportConfig, get_pool, send_envelope
from .account import BulkAccount, BulkResult, OnError, OnSuccess
from .preparation import prepare_stream, worker_count
from .progress import BulkProgress
from .rate import RateLimiter

_STOP = object()
#: How long the caller's thread waits on a full queue before counting outcomes.
_POLL = 0.05


def send_bulk(
    messages: Iterable[EmailMessage],
    *,
    using: str | None = None,
    concurrency: int | None = None,
    max_per_second: float = 0,
    progress: bool | None = None,
    on_success: OnSuccess | None = None,
    on_error: OnError | None = None,
    processes: int | None = None,
) -> BulkResult:
    """Send ``messages`` (any iterable of Django messages, read lazily).

    Returns ``{"sent", "failed", "skipped", "total", "errors"}`` with ``errors``
    as ``(index, exception)`` pairs. ``concurrency`` is the number of SMTP
    connections (default: 4, at most the pool size); ``max_per_second`` caps
    sends over every one-second window (0: no cap); ``progress`` shows a bar
    (default: only on a terminal); ``processes`` is the number of worker
    processes that serialize (default: one per core).
    """
    limiter = limiter_for(max_per_second)
    backend = get_mailer(using)
    total = len(messages) if isinstance(messages, Sized) else None
    with BulkProgress(progress, total) as bar:
        account = BulkAccount(backend, bar, on_success, on_error)
        if not hasattr(backend, "deliver"):
            send_one_by_one(backend, messages, account)
        else:
            _send_in_parallel(
                backend,
                messages,
                account,
                limiter,
                concurrency,
                worker_count(processes),
            )
    return account.result()


def limiter_for(max_per_second: float) -> RateLimiter:
    if not isinstance(max_per_second, (int, float)) or max_per_second < 0:
        raise FluxMailException(
            "max_per_second must be a number >= 0 (0: no limit), "
            f"got {max_per_second!r}",
            code="invalid_params",
        )
    return RateLimiter(max_per_second)


def default_concurrency(config: TransportConfig, concurrency: int | None) -> int:
    if concurrency is not None:
        if concurrency < 1:
            raise FluxMailException(
                f"concurrency must be at least 1, got {concurrency!r}",
                code="invalid_params",
            )
        return concurrency
    return max(1, min(4, config.pool_size))


def send_one_by_one(
    backend: Any, messages: Iterable[EmailMessage], account: BulkAccount
) -> None:
    """For backends without a transport (locmem, memory, console): one at a time."""
    for index, message in enumerate(messages):
        try:
            sent = backend.send_messages([message])
        except Exception as error:
            account.failure(index, message, error)
            continue
        if sent:
            account.count_success(index, getattr(message, "hypermail_status", None))
        else:
            account.skip(index)


def _send_in_parallel(
    backend: Any,
    messages: Iterable[EmailMessage],
    account: BulkAccount,
    limiter: RateLimiter,
    concurrency: int | None,
    processes: int,
) -> None:
    config = backend.transport_config
    work: queue.Queue[Any] = queue.Queue(
        maxsize=default_concurrency(config, concurrency) * 4
    )
    outcomes: queue.SimpleQueue[tuple[int, EmailMessage, Any]] = queue.SimpleQueue()
    senders = [
        threading.Thread(
            target=_sender, args=(config, limiter, work, outcomes), daemon=True
        )
        for _ in range(default_concurrency(config, concurrency))
    ]
    for thread in senders:
        thread.start()
    try:
        for index, message, prepared in prepare_stream(backend, messages, processes):
            if prepared is None:
                account.skip(index)
            elif isinstance(prepared, Exception):
                account.failure(index, message, prepared)
            else:
                _put(work, (index, message, prepared), outcomes, account)
            _count(outcomes, account)
    finally:
        for _ in senders:
            _put(work, _STOP, outcomes, account)
        for thread in senders:
            while thread.is_alive():
                thread.join(_POLL)
                _count(outcomes, account)
        _count(outcomes, account)


def _put(
    work: queue.Queue[Any],
    item: Any,
    outcomes: queue.SimpleQueue[tuple[int, EmailMessage, Any]],
    account: BulkAccount,
) -> None:
    """Queue work; while the senders are busy, count what they finished."""
    while True:
        try:
            work.put(item, timeout=_POLL)
            return
        except queue.Full:
            _count(outcomes, account)


def _count(
    outcomes: queue.SimpleQueue[tuple[int, EmailMessage, Any]], account: BulkAccount
) -> None:
    while True:
        try:
            index, message, outcome = outcomes.get_nowait()
        except queue.Empty:
            return
        if isinstance(outcome, Exception):
            account.failure(index, message, outcome)
        else:
            account.success(index, message, outcome)


def _sender(
    config: TransportConfig,
    limiter: RateLimiter,
    work: queue.Queue[Any],
    outcomes: queue.SimpleQueue[tuple[int, EmailMessage, Any]],
) -> None:
    """One connection's loop: take an envelope, wait for a slot, send, report."""
    lease = Lease(get_pool(config))
    try:
        while (item := work.get()) is not _STOP:
            index, message, envelope = item
            limiter.acquire()
            try:
                outcome: Any = send_envelope(envelope, lease, config)
            except Exception as error:  # Counted, whatever it is: never lost.
                outcome = error
            outcomes.put((index, message, outcome))
    finally:
        lease.release()
