"""Process-wide pools of authenticated SMTP connections, one per configuration.

Django builds a new backend for every ``send_mail()`` call, so reuse has to live
outside the backend: here. A pool hands each connection to one caller at a time
(a :class:`Lease`), keeps idle ones for the next caller, retires them after
``max_connection_age`` seconds or ``max_messages_per_connection`` messages, and
owns the configuration's single ``SSLContext``. After ``fork()`` the child forgets
the parent's connections without touching them (the sockets are shared with the
parent); at interpreter exit idle connections are closed with QUIT.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import smtplib
import ssl
import threading
import time
from collections.abc import Iterator

from . import failures
from .config import TransportConfig
from .connection import create_ssl_context, is_alive, open_connection, quit_connection

logger = logging.getLogger("hypermail_django.transport")


class PooledConnection:
    """An open SMTP connection and what the pool needs to know to retire it."""

    __slots__ = ("created_at", "messages", "pid", "smtp")

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp
        self.created_at = time.monotonic()
        self.messages = 0
        self.pid = os.getpid()


class ConnectionPool:
    """Idle connections to one server, shared by every thread of this process."""

    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self._idle: list[PooledConnection] = []
        self._lock = threading.Lock()
        self._ssl_context: ssl.SSLContext | None = None
        self.connections_opened = 0

    def __repr__(self) -> str:
        where = f"{self.config.host}:{self.config.port}"
        return f"<ConnectionPool {where} idle={len(self._idle)}>"

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The configuration's one context; a certificate or key file that
        cannot be loaded is a ``SendError`` like any failure to connect, so
        ``fail_silently`` and the signals cover it."""
        with self._lock:
            if self._ssl_context is None:
                try:
                    self._ssl_context = create_ssl_context(self.config)
                except (ssl.SSLError, OSError) as exc:
                    error = failures.client_certificate_unusable(self.config, exc)
                    raise error from None
            return self._ssl_context

    def checkout(self) -> tuple[PooledConnection, bool]:
        """Return an idle connection, or a new one; and whether it is new."""
        while True:
            with self._lock:
                pooled = self._idle.pop() if self._idle else None
            if pooled is None:
                return self._connect(), True
            if self.worn_out(pooled):
                quit_connection(pooled.smtp)
                continue
            if not is_alive(pooled.smtp):
                # Closed by the server while idle: replaced before anything is sent.
                logger.debug("Replacing a pooled connection the server had closed")
                self.discard(pooled)
                continue
            return pooled, False

    def checkin(self, pooled: PooledConnection) -> None:
        """Take a connection back after use; keep it if it is healthy and wanted."""
        if pooled.pid != os.getpid():
            return  # Inherited across fork: the parent owns that socket.
        if pooled.smtp.sock is not None and not self.worn_out(pooled):
            with self._lock:
                if len(self._idle) < self.config.pool_size:
                    self._idle.append(pooled)
                    return
        quit_connection(pooled.smtp)

    def discard(self, pooled: PooledConnection) -> None:
        """Drop a broken connection without a word to the server."""
        if pooled.pid == os.getpid():
            pooled.smtp.close()

    def close(self) -> None:
        """QUIT and forget every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for pooled in idle:
            quit_connection(pooled.smtp)

    def forget_after_fork(self) -> None:
        """In a forked child: let go of the parent's sockets without using them."""
        self._lock = threading.Lock()
        for pooled in self._idle:
            if pooled.smtp.sock is not None:
                pooled.smtp.sock.close()
        self._idle = []

    def _connect(self) -> PooledConnection:
        config = self.config
        context = self.ssl_context if (config.use_tls or config.use_ssl) else None
        smtp = open_connection(config, context)
        self.connections_opened += 1
        logger.debug("Opened SMTP connection to %s:%s", config.host, config.port)
        return PooledConnection(smtp)

    def worn_out(self, pooled: PooledConnection) -> bool:
        return worn_out(pooled.created_at, pooled.messages, self.config)


def worn_out(created_at: float, messages: int, config: TransportConfig) -> bool:
    """Whether a connection opened at ``created_at`` (monotonic) that carried
    ``messages`` is due for retirement; for the sync and async pools alike."""
    return (
        time.monotonic() - created_at > config.max_connection_age
        or messages >= config.max_messages_per_connection
    )


class Lease:
    """One caller's hold on a pooled connection, replaced when it breaks."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self._pooled: PooledConnection | None = None

    @property
    def connection(self) -> smtplib.SMTP | None:
        return self._pooled.smtp if self._pooled is not None else None

    def acquire(self) -> tuple[smtplib.SMTP, bool]:
        """The leased connection, checking one out if needed; and whether it is new."""
        if self._pooled is not None and self._pooled.pid != os.getpid():
            self._pooled = None
        if self._pooled is not None and not is_alive(self._pooled.smtp):
            self.discard()
        if self._pooled is None:
            self._pooled, fresh = self.pool.checkout()
            return self._pooled.smtp, fresh
        return self._pooled.smtp, False

    def count_message(self) -> None:
        """Count a message sent; retire the connection at once when it is worn out,
        so the limits hold inside one long batch too, not only between callers."""
        if self._pooled is not None:
            self._pooled.messages += 1
            if self.pool.worn_out(self._pooled):
                self.release()

    def settle(self, delivered: bool) -> None:
        """After an attempt: drop the connection if it closed, else count a
        delivered message against its limits."""
        if self._pooled is not None and self._pooled.smtp.sock is None:
            self.discard()
        elif delivered:
            self.count_message()

    def discard(self) -> None:
        if self._pooled is not None:
            self.pool.discard(self._pooled)
            self._pooled = None

    def release(self) -> None:
        if self._pooled is not None:
            pooled, self._pooled = self._pooled, None
            self.pool.checkin(pooled)


@contextlib.contextmanager
def leased(config: TransportConfig, held: Lease | None = None) -> Iterator[Lease]:
    """Lease a pooled connection for a block of sends and give it back after.

    The one way callers borrow a connection. ``held`` is a lease the caller
    keeps across blocks (``FluxMailBackend.open()``): used as is, not released.
    """
    if held is not None:
        yield held
        return
    lease = Lease(get_pool(config))
    try:
        yield lease
    finally:
        lease.release()


_pools: dict[tuple[object, ...], ConnectionPool] = {}
_pools_lock = threading.Lock()


def get_pool(config: TransportConfig) -> ConnectionPool:
    """The process-wide pool for ``config``, created on first use."""
    key = config.pool_key
    pool = _pools.get(key)
    if pool is None:
        with _pools_lock:
            pool = _pools.setdefault(key, ConnectionPool(config))
    return pool


def close_all_pools() -> None:
    """QUIT every idle pooled connection (at exit, or between tests)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def _after_fork_in_child() -> None:
    global _pools_lock
    _pools_lock = threading.Lock()
    for pool in _pools.values():
        pool.forget_after_fork()
    _pools.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(close_all_pools)
