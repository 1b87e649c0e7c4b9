"""``asend_bulk``: ``send_bulk`` for async code, on aiosmtplib.

The caller's iterable is read, and each message announced (``pre_send``) and
prepared, in a thread: receivers may use the ORM, and waiting for worker
processes must not block the loop. ``concurrency`` tasks, each holding one
pooled aiosmtplib connection, deliver the envelopes; outcomes are counted on the
loop, where async ``post_send``/``send_failed`` receivers are awaited.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Sized
from typing import Any

from asgiref.sync import sync_to_async
from django.core.mail import EmailMessage

from ..backends import FluxMailBackend
from ..backends.limits import limit_mode
from ..batching import aoutcome_batch
from ..conf.mailers import get_mailer
from .account import BulkAccount, BulkResult, OnError, OnSuccess
from .bulk_sender import (
    default_concurrency,
    limiter_for,
    send_one_by_one,
)
from .preparation import prepare_stream, worker_count
from .progress import BulkProgress
from .rate import RateLimiter

_END = object()


async def asend_bulk(
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
    """The async twin of :func:`~.sending.send_bulk`, with the same arguments and
    result. ``messages`` is a plain (sync) iterable, read lazily in a thread."""
    limiter = limiter_for(max_per_second)
    backend = await sync_to_async(get_mailer)(using)
    total = len(messages) if isinstance(messages, Sized) else None
    async with aoutcome_batch():
        with BulkProgress(progress, total) as bar:
            account = BulkAccount(backend, bar, on_success, on_error)
            if not isinstance(backend, FluxMailBackend):
                await sync_to_async(_paced_one_by_one)(
                    backend, messages, account, limiter
                )
            else:
                processes = worker_count(processes)
                await _send_concurrently(
                    backend, messages, account, limiter, concurrency, processes
                )
    return account.result()


def _paced_one_by_one(backend: Any, messages: Any, account: Any, limiter: Any) -> None:
    with limit_mode("pace"):
        send_one_by_one(backend, messages, account, limiter)


async def _send_concurrently(
    backend: FluxMailBackend,
    messages: Iterable[EmailMessage],
    account: BulkAccount,
    limiter: RateLimiter,
    concurrency: int | None,
    processes: int,
) -> None:
    width = default_concurrency(backend.pool_size, concurrency)
    loop = asyncio.get_running_loop()
    prepared: asyncio.Queue[Any] = asyncio.Queue(maxsize=width * 4)
    work: asyncio.Queue[Any] = asyncio.Queue(maxsize=width * 4)
    stop = threading.Event()

    def produce() -> None:
        """In a thread: read, announce and prepare; hand results to the loop."""
        try:
            for item in prepare_stream(backend, messages, processes):
                if stop.is_set():
                    return
                asyncio.run_coroutine_threadsafe(prepared.put(item), loop).result()
        finally:
            if not stop.is_set():
                asyncio.run_coroutine_threadsafe(prepared.put(_END), loop).result()

    producer = loop.run_in_executor(None, produce)
    senders = [
        asyncio.create_task(_sender(backend, limiter, work, account))
        for _ in range(width)
    ]
    try:
        while (item := await prepared.get()) is not _END:
            index, message, envelope = item
            if envelope is None:
                account.skip(index, message)
            elif isinstance(envelope, Exception):
                await account.afailure(index, message, envelope)
            else:
                await work.put(item)
        await producer  # Re-raises an error from reading or preparing.
    finally:
        stop.set()
        while not prepared.empty():  # Unblock a producer waiting to put.
            prepared.get_nowait()
        for _ in senders:
            await work.put(_END)
        await asyncio.gather(*senders)


async def _sender(
    backend: FluxMailBackend,
    limiter: RateLimiter,
    work: asyncio.Queue[Any],
    account: BulkAccount,
) -> None:
    """One connection's loop: take an envelope, wait for a slot, send, count.

    The mailer's shared limits pace the loop (no ``rate_limited`` failures).
    """
    async with backend.adelivery_session(pace=True) as deliver:
        while (item := await work.get()) is not _END:
            index, message, envelope = item
            await limiter.aacquire()
            try:
                status = await deliver(envelope)
            except Exception as error:  # Counted, whatever it is: never lost.
                await account.afailure(index, message, error, envelope)
            else:
                await account.asuccess(index, message, status, envelope)
