"""System checks E050-E052 of every router a project configures: at start-up,
the same errors a router raises on its first send."""

from __future__ import annotations

from django.core.checks import CheckMessage, Error

from ..exceptions import ConfigurationError
from ..mailers import MailerSpec, configured_mailers, get_mailer_spec
from .options import ROUTING_BACKEND, find_cycle


def is_router(spec: MailerSpec) -> bool:
    """Whether ``spec`` configures a RoutingBackend (or a subclass)."""
    from ..backends.routing import RoutingBackend

    if spec.backend == ROUTING_BACKEND:
        return True
    try:
        return issubclass(spec.backend_class(), RoutingBackend)
    except ConfigurationError:
        return False


def routing_errors() -> list[CheckMessage]:
    """E050 unusable options, E051 unknown member, E052 a router reaching itself."""
    from ..backends.routing import RoutingBackend, router_members

    messages: list[CheckMessage] = []
    for spec in configured_mailers():
        if spec.legacy or not is_router(spec):
            continue
        try:
            RoutingBackend(alias=spec.alias, **spec.options)
        except ConfigurationError as error:
            messages.append(Error(str(error), id="hypermail.E050"))
            continue
        for member in spec.options["mailers"]:
            try:
                get_mailer_spec(member)
            except ConfigurationError as error:
                messages.append(
                    Error(
                        f"{spec.label} routes to {member!r}: {error}",
                        hint="Name mailers defined in the same setting.",
                        id="hypermail.E051",
                    )
                )
        cycle = find_cycle(spec.alias, router_members)
        if cycle:
            messages.append(
                Error(
                    f"{spec.label} routes back to itself: {' -> '.join(cycle)}.",
                    hint="Remove the loop from the 'mailers' of these routers.",
                    id="hypermail.E052",
                )
            )
    return messages
