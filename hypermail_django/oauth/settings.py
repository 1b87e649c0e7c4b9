"""Turn the ``token_provider`` option into a provider object.

The option takes a callable; a dotted path to one; a provider name
(``"microsoft"``, ``"google"``, ``"refresh_token"``) whose arguments all come
from the environment; or a dict naming the provider and some of its arguments,
the rest (secrets above all) read from ``FLUXMAIL_OAUTH_<ARGUMENT>``::

    "token_provider": {
        "provider": "microsoft",
        "tenant_id": "...",
        "client_id": "...",
        # client_secret from FLUXMAIL_OAUTH_CLIENT_SECRET
    }

The result is hashable and compares by value, because the transport keys its
connection pools and token cache on it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from django.utils.module_loading import import_string

from ..exceptions import ConfigurationError
from .google import GoogleServiceAccount
from .microsoft import MicrosoftClientCredentials
from .provider import Provider
from .refresh import RefreshToken

#: Provider name -> (class, required arguments, optional arguments).
PROVIDERS: dict[str, tuple[type[Provider], tuple[str, ...], tuple[str, ...]]] = {
    "microsoft": (
        MicrosoftClientCredentials,
        ("tenant_id", "client_id"),
        ("client_secret", "certificate", "authority_host", "scope", "timeout"),
    ),
    "google": (
        GoogleServiceAccount,
        ("info_or_file", "subject"),
        ("scope", "timeout"),
    ),
    "refresh_token": (
        RefreshToken,
        ("token_url", "client_id", "refresh_token"),
        ("client_secret", "scope", "timeout"),
    ),
}

ENV_PREFIX = "FLUXMAIL_OAUTH_"


def env_name(argument: str) -> str:
    """``client_secret`` -> ``FLUXMAIL_OAUTH_CLIENT_SECRET``."""
    return ENV_PREFIX + argument.upper()


def resolve_provider(
    value: Any,
    where: str,
    *,
    username: str = "",
    environ: Mapping[str, str] | None = None,
) -> Callable[[], Any]:
    """The provider ``value`` describes; a :class:`ConfigurationError` naming
    ``where`` when it describes none."""
    environ = os.environ if environ is None else environ
    if isinstance(value, str) and value in PROVIDERS:
        return _build(value, {}, where, username, environ)
    if isinstance(value, Mapping):
        arguments = dict(value)
        name = arguments.pop("provider", None)
        if name not in PROVIDERS:
            raise ConfigurationError(
                f"{where} must name its 'provider': one of "
                f"{', '.join(map(repr, PROVIDERS))}; got {name!r}."
            )
        return _build(name, arguments, where, username, environ)
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise ConfigurationError(
                f"{where} names {value!r}, which cannot be imported: {exc}"
            ) from None
    if not callable(value):
        raise ConfigurationError(
            f"{where} must be a callable returning an access token, a dotted path "
            f"to one, a provider name or a dict; got {type(value).__name__}."
        )
    try:
        hash(value)
    except TypeError:
        return _ByIdentity(value)
    return value


def _build(
    name: str,
    arguments: dict[str, Any],
    where: str,
    username: str,
    environ: Mapping[str, str],
) -> Provider:
    cls, required, optional = PROVIDERS[name]
    unknown = sorted(set(arguments) - set(required) - set(optional))
    if unknown:
        raise ConfigurationError(
            f"{where}: the {name!r} provider takes no {', '.join(map(repr, unknown))}"
            f" (it takes {', '.join(required + optional)})."
        )
    for argument in required + optional:
        if arguments.get(argument) in (None, "") and env_name(argument) in environ:
            value: Any = environ[env_name(argument)]
            if argument == "timeout":
                value = float(value)
            arguments[argument] = value
    if name == "google" and not arguments.get("subject") and username:
        arguments["subject"] = username  # the mailbox the token is for
    missing = [a for a in required if arguments.get(a) in (None, "")]
    if missing:
        raise ConfigurationError(
            f"{where}: the {name!r} provider needs "
            + ", ".join(f"{a!r} (or {env_name(a)})" for a in missing)
            + "."
        )
    try:
        return cls(**arguments)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


class _ByIdentity:
    """A provider that cannot be hashed, keyed by identity instead."""

    __slots__ = ("provider",)

    def __init__(self, provider: Callable[[], Any]) -> None:
        self.provider = provider

    def __call__(self) -> Any:
        return self.provider()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.provider is self.provider

    def __hash__(self) -> int:
        return id(self.provider)

    def secrets(self) -> tuple[str, ...]:
        getter = getattr(self.provider, "secrets", None)
        return tuple(getter()) if callable(getter) else ()

    def forget(self, token: str) -> None:
        forget = getattr(self.provider, "forget", None)
        if callable(forget):
            forget(token)

    def __repr__(self) -> str:
        return f"<token provider {type(self.provider).__name__}>"
