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
from collections import deque
from collections.abc import Iterable, Sized
from typing import Any

from django.core.mail import EmailMessage

from ..backends import FluxMailBackend
from ..backends.limits import limit_mode
from ..batching import outcome_batch
from ..conf.mailers import get_mailer
from ..exceptions import FluxMailException
from ..transport import Envelope
from .account import BulkAccount, BulkResult, OnError, OnSuccess
from .preparation import CHUNK_SIZE, prepare_chunks, worker_count
from .progress import BulkProgress
from .rate import RateLimiter
from .workers import usable_cpus

#: How long the caller's thread waits on a full backlog before counting outcomes.
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
    connections (default: 4, at most the pool size; 2 when this process may
    use one CPU and serializes itself); ``max_per_second`` caps
    sends over every one-second window (0: no cap); ``progress`` shows a bar
    (default: only on a terminal); ``processes`` is the number of worker
    processes that serialize (default: one per core).
    """
    limiter = limiter_for(max_per_second)
    backend = get_mailer(using)
    total = len(messages) if isinstance(messages, Sized) else None
    with BulkProgress(progress, total) as bar, outcome_batch():
        account = BulkAccount(backend, bar, on_success, on_error)
        if not isinstance(backend, FluxMailBackend):
            with limit_mode("pace"):
                send_one_by_one(backend, messages, account, limiter)
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


#: Connections a bulk run uses by default; ``ONE_CPU_CONCURRENCY`` when it
#: serializes in a process that may use one CPU.
DEFAULT_CONCURRENCY = 4
ONE_CPU_CONCURRENCY = 2


def default_concurrency(
    pool_size: int, concurrency: int | None, *, one_cpu: bool = False
) -> int:
    """How many connections a bulk run uses: ``concurrency``, or 4 at most
    (never more than the mailer's ``pool_size``).

    ``one_cpu``: the run serializes in this process, which may use one CPU.
    Then 2: pipelining already hides the server's latency, and every extra
    sender thread only takes turns on that CPU (measured: about 10% less CPU
    per message with 1 or 2 connections than with 4; 2 keeps a message moving
    while the other connection waits on a slow reply).
    """
    if concurrency is not None:
        if concurrency < 1:
            raise FluxMailException(
                f"concurrency must be at least 1, got {concurrency!r}",
                code="invalid_params",
            )
        return concurrency
    most = ONE_CPU_CONCURRENCY if one_cpu else DEFAULT_CONCURRENCY
    return max(1, min(most, pool_size))


def send_one_by_one(
    backend: Any,
    messages: Iterable[EmailMessage],
    account: BulkAccount,
    limiter: RateLimiter | None = None,
) -> None:
    """For backends without one transport (locmem, memory, console, a
    ``RoutingBackend``): one at a time, paced by ``limiter``."""
    for index, message in enumerate(messages):
        if limiter is not None:
            limiter.acquire()
        try:
            sent = backend.send_messages([message])
        except Exception as error:
            account.failure(index, message, error)
            continue
        if sent:
            account.count_success(index, getattr(message, "hypermail_status", None))
        else:
            account.skip(index, message)


_Ready = tuple[int, EmailMessage, Envelope]
_Outcomes = queue.SimpleQueue[tuple[int, EmailMessage, Envelope, Any]]


class Backlog:
    """Prepared messages waiting for a connection.

    The caller's thread adds them a chunk at a time (as the workers return
    them); every sender thread takes them one at a time, so even a short run is
    spread over all the connections. Nobody is woken for each message: a sender
    waits only when the backlog is empty, the caller only when it is full.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[_Ready] = deque()
        self._lock = threading.Lock()
        self._filled = threading.Condition(self._lock)
        self._drained = threading.Condition(self._lock)
        self._closed = False

    def add(self, items: list[_Ready], timeout: float) -> bool:
        """Add ``items`` unless the backlog is still full after ``timeout``
        seconds; return whether they were added."""
        with self._lock:
            if len(self._items) >= self.limit:
                self._drained.wait(timeout)
                if len(self._items) >= self.limit:
                    return False
            self._items.extend(items)
            self._filled.notify(len(items))
            return True

    def take(self) -> _Ready | None:
        """The next message, waiting for one; None once closed and empty."""
        with self._lock:
            while not self._items:
                if self._closed:
                    return None
                self._filled.wait()
            item = self._items.popleft()
            if len(self._items) == self.limit - 1:
                self._drained.notify()
            return item

    def close(self) -> None:
        """No more messages: senders finish what is left, then stop."""
        with self._lock:
            self._closed = True
            self._filled.notify_all()


def _send_in_parallel(
    backend: FluxMailBackend,
    messages: Iterable[EmailMessage],
    account: BulkAccount,
    limiter: RateLimiter,
    concurrency: int | None,
    processes: int,
) -> None:
    one_cpu = processes == 0 and usable_cpus() == 1
    width = default_concurrency(backend.pool_size, concurrency, one_cpu=one_cpu)
    # About a chunk waiting: enough to keep every connection busy while the
    # next chunk is prepared, few enough that messages are still read lazily.
    backlog = Backlog(limit=max(CHUNK_SIZE, width))
    outcomes: _Outcomes = queue.SimpleQueue()
    senders = [
        threading.Thread(
            target=_sender,
            args=(backend, limiter, backlog, outcomes),
            daemon=True,
        )
        for _ in range(width)
    ]
    for thread in senders:
        thread.start()
    try:
        for chunk in prepare_chunks(backend, messages, processes):
            ready: list[_Ready] = []
            for index, message, prepared in chunk:
                if prepared is None:
                    account.skip(index, message)
                elif isinstance(prepared, Exception):
                    account.failure(index, message, prepared)
                else:
                    ready.append((index, message, prepared))
            # While the senders are busy, count what they finished.
            while ready and not backlog.add(ready, _POLL):
                _count(outcomes, account)
            _count(outcomes, account)
    finally:
        backlog.close()
        for thread in senders:
            while thread.is_alive():
                thread.join(_POLL)
                _count(outcomes, account)
        _count(outcomes, account)


def _count(outcomes: _Outcomes, account: BulkAccount) -> None:
    while True:
        try:
            index, message, envelope, outcome = outcomes.get_nowait()
        except queue.Empty:
            return
        if isinstance(outcome, Exception):
            account.failure(index, message, outcome, envelope)
        else:
            account.success(index, message, outcome, envelope)


def _sender(
    backend: FluxMailBackend,
    limiter: RateLimiter,
    backlog: Backlog,
    outcomes: _Outcomes,
) -> None:
    """One connection's loop: take an envelope, wait for a slot, send, report.

    The mailer's shared limits pace the loop (no ``rate_limited`` failures).
    """
    with backend.delivery_session(pace=True) as deliver:
        while (item := backlog.take()) is not None:
            index, message, envelope = item
            limiter.acquire()
            try:
                outcome: Any = deliver(envelope)
            except Exception as error:  # Counted, whatever it is: never lost.
                outcome = error
            outcomes.put((index, message, envelope, outcome))
