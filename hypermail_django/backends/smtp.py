"""``FluxMailBackend``: Django's SMTP backend on a shared, retrying transport."""

from __future__ import annotations

import contextlib
import functools
import ssl
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from django.core.mail import EmailMessage
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend
from django.core.mail.utils import DNS_NAME

from ..compat import ignore_unknown, init_base_backend, warn_direct_construction
from ..conf.mailer_options import TRANSPORT_OPTIONS, resolve_options
from ..exceptions import SendError
from ..outbound import record_suppressed
from ..transport import (
    DeliveryStatus,
    Envelope,
    Lease,
    TransportConfig,
    get_pool,
    leased,
    send_envelope,
)
from .asynchronous import AsyncSendingMixin
from .base import PreparingBackendMixin
from .limits import MailerLimits, hold
from .outcome import deliver_each


class NamingFailures:
    """Name a mailer in the status of a ``SendError`` raised inside the block
    (a plain class: it runs once per message)."""

    __slots__ = ("mailer",)

    def __init__(self, mailer: str) -> None:
        self.mailer = mailer

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        if isinstance(error, SendError) and error.status is not None:
            error.status.mailer = self.mailer


#: What :meth:`FluxMailBackend.delivery_session` yields.
DeliverEnvelope = Callable[[Envelope], DeliveryStatus]


class FluxMailBackend(PreparingBackendMixin, AsyncSendingMixin, DjangoSMTPBackend):
    """A drop-in for ``django.core.mail.backends.smtp.EmailBackend``.

    It takes the same options and keeps the same attributes and semantics, and
    adds: connections pooled across backend instances and threads, retries of
    transient failures, BCC and per-recipient status on ``message.hypermail_status``,
    and a 30-second default timeout. See ``docs/configuration.md``.
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        fail_silently: bool = False,
        use_ssl: bool | None = None,
        timeout: float | None = None,
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        **options: Any,
    ) -> None:
        direct = "alias" not in options
        alias = options.pop("alias", None)
        ignored = options.pop("_ignore_unknown_kwargs", None) or ()
        if direct:
            warn_direct_construction()
        if alias is None:
            # As Django's backend: unknown keywords are ignored with a warning
            # (Django's own on 6.1), refused only for a MAILERS entry.
            options = ignore_unknown(self, options, ignored)
        given = {
            "host": host,
            "port": port,
            "username": username,
            "password": password,
            "use_tls": use_tls,
            "use_ssl": use_ssl,
            "timeout": timeout,
            "ssl_keyfile": ssl_keyfile,
            "ssl_certfile": ssl_certfile,
            **options,
        }
        resolved = resolve_options(given, alias=alias, ignore=ignored)
        init_base_backend(self, alias=alias, fail_silently=fail_silently)
        self.fail_silently = fail_silently
        self.host: str = resolved["host"]
        self.port: int = resolved["port"]
        # None when a MAILERS entry sets none, as in Django's backend.
        self.username: str | None = resolved["username"]
        self.password: str | None = resolved["password"]
        self.use_tls: bool = resolved["use_tls"]
        self.use_ssl: bool = resolved["use_ssl"]
        self.timeout: float = resolved["timeout"]
        self.data_timeout: float = resolved["data_timeout"]
        # None: 10 s, or timeout if smaller (TransportConfig.greeting_timeout).
        self.connect_timeout: float | None = resolved["connect_timeout"]
        self.ssl_certfile: str | None = resolved["ssl_certfile"]
        self.ssl_keyfile: str | None = resolved["ssl_keyfile"]
        self.max_retries: int = resolved["max_retries"]
        self.retry_delay: float = resolved["retry_delay"]
        self.retry_max_delay: float = resolved["retry_max_delay"]
        self.retry_uncertain: bool = resolved["retry_uncertain"]
        self.pool_size: int = resolved["pool_size"]
        self.max_connection_age: float = resolved["max_connection_age"]
        self.max_messages_per_connection: int = resolved["max_messages_per_connection"]
        self.pipelining: bool = resolved["pipelining"]
        self.chunking: bool = resolved["chunking"]
        self.auth_mechanism: str = resolved["auth_mechanism"]
        self.token_provider = resolved["token_provider"]
        self.token_refresh_margin: float = resolved["token_refresh_margin"]
        self.set_preparation_options(resolved)
        self.limits = MailerLimits.from_options(resolved, self.mailer_name)
        self._lease: Lease | None = None
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        name = f" {self.alias!r}" if self.alias else ""
        return f"<{type(self).__name__}{name} {self.host}:{self.port}>"

    @property
    def transport_config(self) -> TransportConfig:
        """This backend's configuration as the transport sees it.

        Built from the attributes at call time, so code that sets
        ``backend.host`` after construction (as Django allows) is honoured.
        """
        values = {name: getattr(self, name) for name in TRANSPORT_OPTIONS}
        values["username"] = values["username"] or ""
        values["password"] = values["password"] or ""
        return TransportConfig(**values, local_hostname=DNS_NAME.get_fqdn())

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The one ``SSLContext`` shared by every connection of this configuration."""
        return get_pool(self.transport_config).ssl_context

    @property
    def connection(self) -> Any:
        """The ``smtplib.SMTP`` this backend holds while opened, else None."""
        return self._lease.connection if self._lease is not None else None

    @connection.setter
    def connection(self, value: Any) -> None:
        if value is not None:
            raise AttributeError("FluxMailBackend.connection is managed by its pool")
        self.close()

    def open(self) -> bool | None:
        """Hold one connection for a batch of sends, as Django's ``open()`` does.

        Return True if a connection was taken (from the pool, or new), False if
        one was already held, None if connecting failed and ``fail_silently``.
        """
        if self._lease is not None:
            return False
        lease = Lease(get_pool(self.transport_config))
        try:
            lease.acquire()
        except SendError:
            if self.fail_silently:
                return None
            raise
        self._lease = lease
        return True

    def close(self) -> None:
        """Give the held connection back to the pool for the next caller."""
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send messages; return how many were accepted for at least one recipient.

        Every message is validated and serialized before the first is sent, so
        an invalid address stops the batch with nothing half-sent.
        """
        if not email_messages:
            return 0
        prepared = self._prepare_all(email_messages)
        config = self.transport_config
        with self._lock, leased(config, self._lease) as lease:
            return deliver_each(
                self,
                prepared,
                lambda _message, envelope: self._send(envelope, lease, config),
                (SendError,),
            )

    @property
    def mailer_name(self) -> str:
        """The alias recorded as ``hypermail_status.mailer``."""
        return self.alias or "default"

    def _naming_failures(self) -> NamingFailures:
        """Name this mailer in the status of a ``SendError`` raised inside."""
        return NamingFailures(self.mailer_name)

    def _accepted(self, status: DeliveryStatus, envelope: Envelope) -> DeliveryStatus:
        """Complete an accepted envelope's status: suppressed recipients, mailer."""
        status = record_suppressed(status, envelope)
        status.mailer = self.mailer_name
        return status

    def deliver(self, envelope: Envelope) -> DeliveryStatus:
        """Send a prepared envelope through this mailer's pool and retry policy.

        Returns its status when at least one recipient accepted it; raises a
        ``SendError`` (with ``.status``) when none did. No signals are sent:
        callers that hold the message send them.
        """
        config = self.transport_config
        with self._lock, leased(config, self._lease) as lease:
            return self._send(envelope, lease, config)

    @contextlib.contextmanager
    def delivery_session(self, *, pace: bool = False) -> Iterator[DeliverEnvelope]:
        """Hold one pooled connection and yield a function that delivers
        prepared envelopes over it, as :meth:`deliver` does.

        For callers that send from several threads at once, each thread with
        a session of its own (``send_bulk``): a session takes neither the
        backend's lock nor the connection held by ``open()``. ``pace`` waits
        at the mailer's sending limits instead of failing with ``rate_limited``.
        The connection goes back to the pool when the block ends.
        """
        config = self.transport_config
        with leased(config) as lease:
            yield functools.partial(self._send, lease=lease, config=config, pace=pace)

    def _send(
        self,
        envelope: Envelope,
        lease: Lease,
        config: TransportConfig,
        pace: bool = False,
    ) -> DeliveryStatus:
        with self._naming_failures(), hold(self.limits, pace=pace):
            status = send_envelope(envelope, lease, config)
        return self._accepted(status, envelope)
