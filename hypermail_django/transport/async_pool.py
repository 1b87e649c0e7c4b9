"""Pools of aiosmtplib connections, one per event loop and configuration.

An aiosmtplib connection belongs to the event loop that opened it, so pools are
kept per running loop. A long-lived loop (an ASGI server's, a worker's) reuses
its connections across requests. A short one (``asyncio.run()``,
``async_to_sync()``) closes its connections with QUIT as it shuts down: the
pool registers an async generator with the loop, which ``shutdown_asyncgens()``
(called by both before closing the loop) finalizes. The pools of a loop closed
without that step are forgotten the next time a loop asks for a pool. The SSL
context is the configuration's one context, shared with the sync pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator

import aiosmtplib

from .async_connection import aquit, is_alive, open_async_connection
from .config import TransportConfig
from .connection import QUIT_TIMEOUT
from .pool import get_pool, worn_out

logger = logging.getLogger("hypermail_django.transport")


class AsyncPooledConnection:
    """An open aiosmtplib connection and what the pool needs to retire it."""

    __slots__ = ("created_at", "messages", "smtp")

    def __init__(self, smtp: aiosmtplib.SMTP) -> None:
        self.smtp = smtp
        self.created_at = time.monotonic()
        self.messages = 0


class AsyncConnectionPool:
    """Idle connections to one server for the coroutines of one event loop.

    No lock is needed: a loop runs one coroutine at a time, and nothing awaits
    between taking a connection off the idle list and owning it.
    """

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self._idle: list[AsyncPooledConnection] = []
        self.connections_opened = 0

    async def checkout(self) -> tuple[AsyncPooledConnection, bool]:
        """Return an idle connection, or a new one; and whether it is new."""
        while self._idle:
            pooled = self._idle.pop()
            if self.worn_out(pooled):
                await aquit(pooled.smtp, QUIT_TIMEOUT)
            elif is_alive(pooled.smtp):
                return pooled, False
            else:  # Closed (or closing) by the server while idle: replace it.
                logger.debug("Replacing a pooled connection the server had closed")
                pooled.smtp.close()
        config = self.config
        needs_tls = config.use_tls or config.use_ssl
        context = get_pool(config).ssl_context if needs_tls else None
        smtp = await open_async_connection(config, context)
        self.connections_opened += 1
        logger.debug("Opened async SMTP connection to %s:%s", config.host, config.port)
        return AsyncPooledConnection(smtp), True

    async def checkin(self, pooled: AsyncPooledConnection) -> None:
        """Take a connection back; keep it if it is healthy and wanted."""
        if (
            pooled.smtp.is_connected
            and not self.worn_out(pooled)
            and len(self._idle) < self.config.pool_size
        ):
            self._idle.append(pooled)
            return
        await aquit(pooled.smtp, QUIT_TIMEOUT)

    def discard(self, pooled: AsyncPooledConnection) -> None:
        pooled.smtp.close()

    async def aclose(self) -> None:
        """QUIT and forget every idle connection."""
        idle, self._idle = self._idle, []
        await asyncio.gather(*(aquit(p.smtp, QUIT_TIMEOUT) for p in idle))

    def worn_out(self, pooled: AsyncPooledConnection) -> bool:
        return worn_out(pooled.created_at, pooled.messages, self.config)


class AsyncLease:
    """One coroutine's hold on a pooled connection, replaced when it breaks."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._pooled: AsyncPooledConnection | None = None

    @property
    def connection(self) -> aiosmtplib.SMTP | None:
        return self._pooled.smtp if self._pooled is not None else None

    async def acquire(self) -> tuple[aiosmtplib.SMTP, bool]:
        if self._pooled is not None and not is_alive(self._pooled.smtp):
            self.discard()
        if self._pooled is None:
            self._pooled, fresh = await self.pool.checkout()
            return self._pooled.smtp, fresh
        return self._pooled.smtp, False

    async def count_message(self) -> None:
        if self._pooled is not None:
            self._pooled.messages += 1
            if self.pool.worn_out(self._pooled):
                await self.release()

    async def settle(self, delivered: bool) -> None:
        """After an attempt: drop the connection if it closed, else count a
        delivered message against its limits."""
        if self._pooled is not None and not self._pooled.smtp.is_connected:
            self.discard()
        elif delivered:
            await self.count_message()

    def discard(self) -> None:
        if self._pooled is not None:
            self.pool.discard(self._pooled)
            self._pooled = None

    async def release(self) -> None:
        if self._pooled is not None:
            pooled, self._pooled = self._pooled, None
            await self.pool.checkin(pooled)


@contextlib.asynccontextmanager
async def aleased(config: TransportConfig) -> AsyncIterator[AsyncLease]:
    """The async twin of :func:`~.pool.leased`: the running loop's pool."""
    lease = AsyncLease(get_async_pool(config))
    try:
        yield lease
    finally:
        await lease.release()


class _LoopPools:
    """The pools of one event loop, closed when the loop shuts down."""

    def __init__(self) -> None:
        self.pools: dict[tuple[object, ...], AsyncConnectionPool] = {}
        # Held here: the loop keeps only a weak reference to its async generators.
        self.guard: AsyncGenerator[None, None] | None = None

    async def aclose(self) -> None:
        pools, self.pools = list(self.pools.values()), {}
        await asyncio.gather(*(pool.aclose() for pool in pools))


#: Every loop that has pools. A plain dict: idle connections refer to their
#: loop, so a weak one would never let a loop go.
_loops: dict[asyncio.AbstractEventLoop, _LoopPools] = {}


def get_async_pool(config: TransportConfig) -> AsyncConnectionPool:
    """The running loop's pool for ``config``, created on first use."""
    loop = asyncio.get_running_loop()
    entry = _loops.get(loop)
    if entry is None:
        _forget_closed_loops()
        entry = _loops[loop] = _LoopPools()
        entry.guard = _close_at_shutdown(loop, entry)
        # Its first step registers it with the loop (the firstiter hook) and
        # stops at its only yield.
        with contextlib.suppress(StopIteration):
            entry.guard.asend(None).send(None)
    pool = entry.pools.get(config.pool_key)
    if pool is None:
        pool = entry.pools[config.pool_key] = AsyncConnectionPool(config)
    return pool


async def _close_at_shutdown(
    loop: asyncio.AbstractEventLoop, entry: _LoopPools
) -> AsyncGenerator[None, None]:
    """Wait, as an async generator the loop knows of, for the loop's
    ``shutdown_asyncgens()``; then QUIT its idle connections and forget it."""
    try:
        yield
    finally:
        if _loops.get(loop) is entry:
            del _loops[loop]
        await entry.aclose()


def _forget_closed_loops() -> None:
    """Drop the pools of loops closed without ``shutdown_asyncgens()``: their
    connections can no longer be used; the garbage collector closes them."""
    for loop in [loop for loop in _loops if loop.is_closed()]:
        del _loops[loop]


async def aclose_async_pools() -> None:
    """QUIT the running loop's idle connections (e.g. at ASGI shutdown)."""
    entry = _loops.pop(asyncio.get_running_loop(), None)
    if entry is not None:
        await entry.aclose()


def _after_fork_in_child() -> None:
    # A forked child never runs the parent's loops; drop their pools unused.
    _loops.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
