"""Preparing bulk messages on every core, lazily, without doing anything twice.

Building and serializing a message costs Django milliseconds of CPU, several
times the SMTP exchange, so that is what bounds bulk throughput. The parent
process announces each message (``pre_send``: receivers connected at run time
live only there) and ships it to a pool of worker processes, which inline CSS,
validate and serialize it with the very code ``FluxMailBackend.prepare`` runs;
the parent gets back the envelope (its bytes) and never serializes again.

Messages are read from the caller's iterable a chunk at a time, with a bounded
number of chunks in flight, so a generator of a million messages is never held
in memory. Workers start from ``forkserver`` (never ``fork`` of a process that
may run threads) and load the project's settings module, so processes are used
only when ``DJANGO_SETTINGS_MODULE`` names one; otherwise, or with
``processes=0``, messages are serialized in this process.
"""

from __future__ import annotations

import atexit
import copy
import itertools
import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, cast

from django.conf import settings
from django.core.mail import EmailMessage

from ..backends.base import PreparingBackendMixin
from ..exceptions import FluxMailException
from ..transport import Envelope
from .workers import in_worker_bootstrap, usable_cpus, warn_no_workers, why_no_workers

#: What preparing one message gives: an envelope, None (nothing to send), or
#: the error that stopped it (an invalid address...).
Prepared = Envelope | None | Exception

CHUNK_SIZE = 32

Chunk = list[tuple[int, EmailMessage]]
#: A chunk on its way: the worker's future, the chunk, the indexes announced.
#: (None, chunk, None): a chunk that never reached a worker.
_Inflight = tuple["Future[list[tuple[int, Prepared]]] | None", Chunk, "set[int] | None"]


class WorkerSerializer(PreparingBackendMixin):
    """The backend's preparation options, rebuilt inside a worker process."""

    def __init__(self, css_inline: bool, css_inliner: Any, policy: Any) -> None:
        self.css_inline = css_inline
        self.css_inliner = css_inliner
        self.policy = policy

    @property
    def outbound_policy(self) -> Any:
        """The parent's policies (DKIM keys included), as sent with the chunk."""
        return self.policy


#: (css_inline, css_inliner, OutboundPolicy): what a worker needs to serialize.
Options = tuple[bool, Any, Any]

_serializers: dict[Options, WorkerSerializer] = {}


def _init_worker(settings_module: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()


def serialize_chunk(
    options: Options, chunk: list[tuple[int, EmailMessage]]
) -> list[tuple[int, Prepared]]:
    """Worker side: serialize announced messages; errors travel back as values."""
    serializer = _serializers.get(options)
    if serializer is None:
        serializer = _serializers[options] = WorkerSerializer(*options)
    results: list[tuple[int, Prepared]] = []
    for index, message in chunk:
        try:
            results.append((index, serializer.serialize(message)))
        except FluxMailException as error:
            results.append((index, error))
    return results


class _Executors:
    """One process pool per size, started on first use and reused after."""

    def __init__(self) -> None:
        self._pools: dict[int, ProcessPoolExecutor] = {}
        self._pid = os.getpid()
        #: Why worker processes could not start here, once a pool failed to.
        self.broken: str | None = None

    def get(self, processes: int, settings_module: str) -> ProcessPoolExecutor:
        if self._pid != os.getpid():  # A forked child must not use the parent's.
            self._pools, self._pid, self.broken = {}, os.getpid(), None
        pool = self._pools.get(processes)
        if pool is None:
            pool = self._pools[processes] = ProcessPoolExecutor(
                max_workers=processes,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=_init_worker,
                initargs=(settings_module,),
            )
        return pool

    def mark_broken(self, error: BaseException) -> None:
        """Worker processes failed to start (or died): use none from now on in
        this process, and say why, once."""
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self._pools.clear()
        if self.broken is None:
            self.broken = (
                "its worker processes could not start or died "
                f"({type(error).__name__}: {error})"
            )
            warn_no_workers(self.broken, stacklevel=5)

    def shutdown(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        self._pools.clear()


executors = _Executors()
atexit.register(executors.shutdown)


def worker_count(processes: int | None) -> int:
    """How many worker processes to use: 0 means serialize in this process.

    By default one per usable CPU (see :mod:`.workers`), none with one CPU.
    Where workers cannot start (no main guard, a frozen app...), 0 with one
    warning that says why.
    """
    if processes is not None and processes < 0:
        raise ValueError("processes must be >= 0")
    if in_worker_bootstrap():
        # The main script, run again to bootstrap a worker, reached send_bulk:
        # sending from here would send everything once more. The parent sees
        # the pool break and serializes in its own process.
        raise SystemExit(
            "send_bulk was called while a worker process imported the main "
            "script; put the call under 'if __name__ == \"__main__\":'"
        )
    if processes is None:
        cpus = usable_cpus()
        processes = cpus if cpus > 1 else 0
    if processes == 0 or not _settings_module():
        return 0
    reason = executors.broken or why_no_workers()
    if reason:
        warn_no_workers(reason, stacklevel=3)
        return 0
    return processes


def _settings_module() -> str | None:
    """The importable settings module workers can load, if the project has one."""
    module = os.environ.get("DJANGO_SETTINGS_MODULE")
    if module and getattr(settings, "SETTINGS_MODULE", None) == module:
        return module
    return None


def _portable(message: EmailMessage) -> EmailMessage:
    """A copy of ``message`` without its connection (a backend holds locks)."""
    portable = copy.copy(message)
    for name in ("_connection", "connection"):
        if name in portable.__dict__:
            portable.__dict__[name] = None
    return portable


def prepare_stream(
    backend: Any, messages: Iterable[EmailMessage], processes: int
) -> Iterator[tuple[int, EmailMessage, Prepared]]:
    """Yield ``(index, message, prepared)`` for every message, lazily.

    Results come back in submission order; a message that has nothing to send
    (no recipients, cancelled by ``pre_send``) comes with ``None``.
    """
    for chunk in prepare_chunks(backend, messages, processes):
        yield from chunk


def prepare_chunks(
    backend: Any, messages: Iterable[EmailMessage], processes: int
) -> Iterator[list[tuple[int, EmailMessage, Prepared]]]:
    """:func:`prepare_stream` a chunk at a time, as the workers return them, so
    whoever takes the results over can hand them on in chunks too. Prepared in
    this process (``processes=0``), each message comes alone, as soon as it is
    ready."""
    numbered = enumerate(messages)
    if processes == 0:
        for index, message in numbered:
            yield [(index, message, _prepare_here(backend, message))]
        return

    options = (backend.css_inline, backend.css_inliner, backend.outbound_policy)
    module = _settings_module()
    assert module is not None
    inflight: deque[_Inflight] = deque()
    exhausted = False
    while executors.broken is None:
        while not exhausted and len(inflight) < processes * 2:
            chunk = list(itertools.islice(numbered, CHUNK_SIZE))
            if not chunk:
                exhausted = True
                break
            try:
                pool = executors.get(processes, module)
                inflight.append(_submit(pool, backend, options, chunk))
            except (BrokenProcessPool, OSError) as error:
                # No process could start (a sandbox without fork...): this
                # chunk, announced or not, is prepared here, then the rest.
                executors.mark_broken(error)
                inflight.append((None, chunk, None))
                break
        if not inflight:
            return
        yield _collect(inflight.popleft(), backend)
    # The workers could not start: what is in flight, then the rest, here.
    while inflight:
        yield _collect(inflight.popleft(), backend)
    for index, message in numbered:
        yield [(index, message, _prepare_here(backend, message))]


def _submit(
    pool: ProcessPoolExecutor,
    backend: Any,
    options: Options,
    chunk: list[tuple[int, EmailMessage]],
) -> _Inflight:
    """Announce a chunk here (``pre_send``), then have a worker serialize it."""
    announced = {index for index, message in chunk if backend.announce(message)}
    work = [
        (index, _portable(message)) for index, message in chunk if index in announced
    ]
    return pool.submit(serialize_chunk, options, work), chunk, announced


def _collect(
    inflight: _Inflight, backend: Any
) -> list[tuple[int, EmailMessage, Prepared]]:
    future, chunk, announced = inflight
    if future is None or announced is None:  # Never reached a worker.
        return [(i, message, _prepare_here(backend, message)) for i, message in chunk]
    try:
        done = dict(future.result())
    except BrokenProcessPool as error:
        executors.mark_broken(error)
        done = {
            index: _serialize_here(backend, message)
            for index, message in chunk
            if index in announced
        }
    except Exception:
        # The chunk could not travel (an unpicklable attachment or inliner) or
        # its worker died: serialize it here. A real bug raises again here,
        # with its own traceback. Announced messages are not announced twice.
        done = {
            index: _serialize_here(backend, message)
            for index, message in chunk
            if index in announced
        }
    # Not announced: nothing to send.
    return [(index, message, done.get(index)) for index, message in chunk]


def _prepare_here(backend: Any, message: EmailMessage) -> Prepared:
    try:
        return cast(Prepared, backend.prepare(message))
    except FluxMailException as error:
        return error


def _serialize_here(backend: Any, message: EmailMessage) -> Prepared:
    try:
        return cast(Prepared, backend.serialize(message))
    except FluxMailException as error:
        return error
