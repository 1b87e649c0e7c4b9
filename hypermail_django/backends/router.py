"""``RoutingBackend``: one mailer made of others, with failover and round robin.

It prepares each message once (its own preparation options: ``css_inline``,
``defaults``, staging policies, ``dkim``), then hands the envelope to its
members in the order the strategy and their health give
(:mod:`hypermail_django.routing.order`). A member that fails before any content
could have been accepted passes every recipient on to the next; one that
accepted some passes on only the ``deferred`` ones
(:mod:`hypermail_django.routing.moves`). Nobody gets two copies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from asgiref.sync import sync_to_async
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

from ..compat import init_base_backend, mailers_configured
from ..conf.mailer_options import resolve_preparation_options
from ..exceptions import ConfigurationError, RateLimited, SendError
from ..routing.moves import NOT_CONNECTED, member_failed, nothing_accepted, to_move
from ..routing.options import (
    ROUTING_BACKEND,
    ROUTING_OPTIONS,
    RoutingOptions,
    find_cycle,
    parse_routing_options,
)
from ..routing.order import RouteState
from ..transport import DeliveryStatus, Envelope, RecipientStatus
from .base import PreparingBackendMixin
from .envelope_mailers import AsyncEnvelopeMailer, EnvelopeMailer
from .limits import limit_mode
from .outcome import (
    accepted_by,
    adeliver_each,
    deliver_each,
    everyone,
    everyone_failed,
)

logger = logging.getLogger("hypermail_django.routing")

Attempt = tuple[DeliveryStatus, SendError | None, bool]

#: What a failed route raises (recorded, then raised unless ``fail_silently``).
_ERRORS = (SendError,)


class RoutingBackend(PreparingBackendMixin, BaseEmailBackend):
    """Send through the first healthy member, and move on to the next one for
    exactly the recipients that provably did not get the message.

    OPTIONS: ``mailers`` (aliases of other mailers), ``strategy``
    (``failover``, ``round_robin``, ``weighted``), ``weights``,
    ``failure_threshold``, ``cooldown``, ``limits_cache``; see
    ``docs/routing-and-limits.md``.
    """

    def __init__(self, fail_silently: bool = False, **options: Any) -> None:
        alias = options.pop("alias", None)
        ignored = options.pop("_ignore_unknown_kwargs", None) or ()
        if "mailers" not in options:
            options = {**_bridge_options(alias), **options}
        self.name: str = alias or "default"
        self.label = _label(self.name)
        routing = {
            name: options.pop(name) for name in ROUTING_OPTIONS if name in options
        }
        self.routing: RoutingOptions = parse_routing_options(routing, self.label)
        resolved = resolve_preparation_options(
            options, alias=alias, ignore=ignored, backend="RoutingBackend"
        )
        init_base_backend(self, alias=alias, fail_silently=fail_silently)
        self.fail_silently = fail_silently
        self.set_preparation_options(resolved)
        self._members: dict[str, Any] = {}
        self._state: RouteState | None = None

    def __repr__(self) -> str:
        members = list(self.routing.mailers)
        return f"<RoutingBackend {self.name!r} {self.routing.strategy} {members}>"

    @property
    def state(self) -> RouteState:
        """The turn and health of the members (per process, or in ``limits_cache``)."""
        if self._state is None:
            self._state = RouteState(self.name, self.routing)
        return self._state

    def member(self, alias: str) -> Any:
        """The member mailer ``alias``, built on first use (after the checks)."""
        if alias not in self._members:
            self.check_members()
            from ..conf.mailers import get_mailer

            self._members[alias] = get_mailer(alias)
        return self._members[alias]

    def check_members(self) -> None:
        """Raise ``ConfigurationError`` for an unknown member or a routing loop."""
        from ..conf.mailers import get_mailer_spec

        for alias in self.routing.mailers:
            get_mailer_spec(alias)  # unknown_mailer
        cycle = find_cycle(self.name, router_members)
        if cycle:
            raise ConfigurationError(
                f"{self.label} routes back to itself: {' -> '.join(cycle)}. "
                "Remove the loop from the 'mailers' of these routers.",
                code="invalid_routing",
            )

    def open(self) -> bool:
        """Hold nothing: each member takes a pooled connection per send."""
        return False

    def close(self) -> None:
        """Close members that hold a connection (``open()`` was theirs)."""
        for member in self._members.values():
            member.close()

    # -- sending ---------------------------------------------------------------

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send messages; return how many were accepted for at least one recipient.

        Every message is prepared before the first is sent, as ``FluxMailBackend`` does.
        """
        if not email_messages:
            return 0
        self.check_members()
        prepared = self._prepare_all(email_messages)
        return deliver_each(
            self, prepared, lambda _message, envelope: self.deliver(envelope), _ERRORS
        )

    async def asend_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """The async twin of :meth:`send_messages`."""
        if not email_messages:
            return 0
        await sync_to_async(self.check_members)()
        prepared = await sync_to_async(self._prepare_all)(email_messages)
        return await adeliver_each(
            self, prepared, lambda _message, envelope: self.adeliver(envelope), _ERRORS
        )

    def deliver(self, envelope: Envelope) -> DeliveryStatus:
        """Route a prepared envelope; return its status when anyone accepted
        it, raise the last member's ``SendError`` (with ``.status``) otherwise."""
        route = Route(self, envelope)
        for alias in self.state.order():
            pending = route.pending
            if pending is None:
                break
            if not self.state.claim(alias):
                continue  # Another caller is probing it after its cool-down.
            member = self.member(alias)
            with limit_mode("skip"):  # A member at its limit: the next one.
                route.record(alias, self._attempt(member, pending))
        if route.pending is not None and route.limited:
            # Every member left was at its limit: wait for the first one (or
            # pace, in bulk) as a plain mailer would.
            alias = route.limited[0]
            route.record(alias, self._attempt(self.member(alias), route.pending))
        return route.finish()

    async def adeliver(self, envelope: Envelope) -> DeliveryStatus:
        """The async twin of :meth:`deliver` (members' ``adeliver`` if any)."""
        route = Route(self, envelope)
        order = await _maybe_thread(self, self.state.order)
        for alias in order:
            pending = route.pending
            if pending is None:
                break
            if not await _maybe_thread(self, self.state.claim, alias):
                continue  # Another caller is probing it after its cool-down.
            with limit_mode("skip"):
                attempt = await self._aattempt(alias, pending)
            await _maybe_thread(self, route.record, alias, attempt)
        if route.pending is not None and route.limited:
            alias = route.limited[0]
            attempt = await self._aattempt(alias, route.pending)
            await _maybe_thread(self, route.record, alias, attempt)
        return route.finish()

    async def _aattempt(self, alias: str, envelope: Envelope) -> Attempt:
        member = await sync_to_async(self.member)(alias)
        if isinstance(member, AsyncEnvelopeMailer):
            return await _aattempt(member, envelope)
        return await sync_to_async(self._attempt)(member, envelope)

    def _attempt(self, member: Any, envelope: Envelope) -> Attempt:
        if isinstance(member, EnvelopeMailer):
            try:
                return member.deliver(envelope), None, True
            except SendError as error:
                return error.status or everyone_failed(envelope, error), error, True
        return _send_other(member, envelope)


class Route:
    """One envelope's way through the members: who is still pending, and the
    combined status."""

    def __init__(self, router: RoutingBackend, envelope: Envelope) -> None:
        self.router = router
        self.envelope = envelope
        self.status = DeliveryStatus(message_id=envelope.message_id)
        self.pending: Envelope | None = envelope
        self.error: SendError | None = None
        self.last_mailer: str | None = None
        #: Members that were at their sending limit, in the order tried.
        self.limited: list[str] = []

    def record(self, alias: str, attempt: Attempt) -> None:
        """Take one member's outcome; decide who, if anyone, moves on."""
        status, error, movable = attempt
        self.last_mailer = status.mailer or alias
        self.status.attempts += status.attempts
        self.status.recipients.update(status.recipients)
        if status.sent and self.status.mailer is None:
            # A member that is a router itself names its own member.
            self.status.mailer = status.mailer or alias
        if error is not None:
            self.error = error
        state = self.router.state
        if isinstance(error, RateLimited):
            if alias not in self.limited:
                self.limited.append(alias)
        elif member_failed(status, error):
            state.failed(alias)
        else:
            state.succeeded(alias)
        moving = to_move(status, error) if movable else []
        if not moving or self.pending is None:
            self.pending = None
            return
        logger.warning(
            "Message %s: mailer %r did not take %d recipient(s) (%s); "
            "trying the next member of %r",
            self.envelope.message_id,
            alias,
            len(moving),
            error or "deferred",
            self.router.name,
        )
        self.pending = replace(self.pending, recipients=tuple(moving))

    def finish(self) -> DeliveryStatus:
        status = self.status
        if status.sent:
            return status
        status.mailer = self.last_mailer
        error = self.error or SendError(
            f"No member of {self.router.label} accepted the message.",
            code="not_sent",
            transient=True,
        )
        error.status = status
        raise error


async def _aattempt(member: Any, envelope: Envelope) -> Attempt:
    try:
        return await member.adeliver(envelope), None, True
    except SendError as error:
        return error.status or everyone_failed(envelope, error), error, True


async def _maybe_thread(router: RoutingBackend, func: Any, *args: Any) -> Any:
    """Run a state operation in a thread when the state is in a shared cache
    (network I/O); the per-process state is memory only."""
    if router.routing.limits_cache is None:
        return func(*args)
    return await sync_to_async(func, thread_sensitive=False)(*args)


def _send_other(member: Any, envelope: Envelope) -> Attempt:
    """Send through a mailer that is not ours: rebuild the message for the
    pending recipients. Its error moves the recipients on only when it is a
    connection-level one (nothing can have been accepted)."""
    from ..background.rebuild import message_from_envelope
    from ..background.stored_delivery import as_send_error

    message = message_from_envelope(envelope)
    try:
        sent = member.send_messages([message])
    except Exception as exc:
        error = as_send_error(exc)
        movable = isinstance(exc, NOT_CONNECTED) or (
            isinstance(exc, SendError) and nothing_accepted(exc)
        )
        if movable:
            fate = RecipientStatus("deferred", error.smtp_code, str(error))
            return everyone(envelope, fate), error, True
        return everyone_failed(envelope, error), error, False
    if not sent:
        error = SendError(
            f"{type(member).__name__}.send_messages() sent nothing",
            code="not_sent",
        )
        return everyone_failed(envelope, error), error, False
    return accepted_by(member, envelope), None, True


def router_members(alias: str) -> tuple[str, ...] | None:
    """The members of router ``alias``, or None when it is not a router (or unknown)."""
    from ..conf.mailers import get_mailer_spec

    try:
        spec = get_mailer_spec(alias)
        cls = spec.backend_class()
    except ConfigurationError:
        return None
    if not issubclass(cls, RoutingBackend) and spec.backend != ROUTING_BACKEND:
        return None
    mailers = spec.options.get("mailers")
    if not isinstance(mailers, (list, tuple)):
        return None
    return tuple(name for name in mailers if isinstance(name, str))


def _bridge_options(alias: str | None) -> dict[str, Any]:
    """On Django 5.2/6.0, a router built as ``EMAIL_BACKEND`` (no options)
    reads them from its ``HYPERMAIL_MAILERS`` entry."""
    if mailers_configured():
        return {}
    from ..conf.mailers import bridge_mailers

    entry = bridge_mailers().get(alias or "default")
    if isinstance(entry, dict) and isinstance(entry.get("OPTIONS"), dict):
        return dict(entry["OPTIONS"])
    return {}


def _label(alias: str) -> str:
    if mailers_configured():
        return f"MAILERS[{alias!r}]"
    return f"HYPERMAIL_MAILERS[{alias!r}]"
