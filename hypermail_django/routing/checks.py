"""System checks E050-E052 of every router a project configures (at start-up,
the same errors a router raises on its first send), and W050 for shared limits."""

from __future__ import annotations

from django.core.checks import CheckMessage, Error, Warning

from ..conf.mailers import MailerSpec, configured_mailers, get_mailer_spec
from ..exceptions import ConfigurationError
from .options import ROUTING_BACKEND, find_cycle


def is_router(spec: MailerSpec) -> bool:
    """Whether ``spec`` configures a RoutingBackend (or a subclass)."""
    from ..backends.router import RoutingBackend

    if spec.backend == ROUTING_BACKEND:
        return True
    try:
        return issubclass(spec.backend_class(), RoutingBackend)
    except ConfigurationError:
        return False


def routing_errors() -> list[CheckMessage]:
    """E050 unusable options, E051 unknown member, E052 a router reaching itself."""
    from ..backends.router import RoutingBackend, router_members

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


#: Django cache backends that delete entries past ``MAX_ENTRIES`` (default 300).
CULLING_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.db.DatabaseCache",
    "django.core.cache.backends.filebased.FileBasedCache",
)


def limit_warnings() -> list[CheckMessage]:
    """W050: a ``limits_cache`` that culls entries before the limits' slots fit:
    a culled slot is a free slot, and the limit would be passed."""
    from django.conf import settings

    from ..backends.limits import WINDOWS
    from ..conf.mailer_options import LIMIT_OPTIONS

    messages: list[CheckMessage] = []
    for spec in configured_mailers():
        options = spec.options
        alias = options.get("limits_cache")
        caches = getattr(settings, "CACHES", {})
        if spec.legacy or not isinstance(alias, str) or alias not in caches:
            continue
        config = caches[alias]
        if config.get("BACKEND") not in CULLING_CACHES:
            continue
        slots = sum(
            value
            for name, value in options.items()
            if name in LIMIT_OPTIONS
            and (name in WINDOWS or name == "max_connections")
            and isinstance(value, int)
        )
        room = int((config.get("OPTIONS") or {}).get("MAX_ENTRIES", 300))
        if slots + 10 > room:
            messages.append(
                Warning(
                    f"{spec.label} keeps up to {slots} limit slots in cache "
                    f"{alias!r}, whose MAX_ENTRIES is {room}: culled slots "
                    "would let more mail through than the limits allow.",
                    hint=f"Set CACHES[{alias!r}]['OPTIONS']['MAX_ENTRIES'] above "
                    f"{slots + 10} (other entries of that cache count too), or "
                    "use Redis.",
                    id="hypermail.W050",
                )
            )
    return messages
