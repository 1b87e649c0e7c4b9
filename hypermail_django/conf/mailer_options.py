"""The one settings accessor: every backend option, where it comes from, its check.

Precedence, as in django-anymail: the backend's own options (``MAILERS`` ``OPTIONS``
on Django 6.1, or keyword arguments to ``get_connection()``), then -- only when
``MAILERS`` is not in use -- the ``EMAIL_*`` and ``EMAIL_FLUXMAIL_*`` settings,
then the default. Settings are read at call time, never cached at import. Every
error names the setting or option the user has to fix.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from ..compat import legacy_setting
from ..exceptions import ConfigurationError, MailerConfigurationError
from .validators import (
    Check,
    any_text,
    count,
    flag,
    from_text,
    optional_positive_count,
    seconds,
)


def _port(value: Any, where: str) -> int:
    value = from_text(value, int)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536:
        return value
    raise ConfigurationError(f"{where} must be a port number (1-65535), got {value!r}.")


#: The longest wait or delay an option may ask for: a day. Anything longer is
#: a mistake (``inf`` would pass a ``>= 0`` check, then overflow the socket).
MAX_SECONDS = 86400.0


def _seconds(value: Any, where: str) -> float:
    return seconds(value, where, maximum=MAX_SECONDS, maximum_label="a day")


def _timeout(value: Any, where: str) -> float:
    seconds = _seconds(value, where)
    if seconds == 0:
        raise ConfigurationError(
            f"{where} must be more than 0 seconds; a server that never answers "
            "would otherwise hang the request forever."
        )
    return seconds


def _file(value: Any, where: str) -> str | None:
    """A path, read when TLS is first set up (as Django's backend reads it);
    a missing file is reported then, and by system check hypermail.W060."""
    if value is None or value == "":
        return None
    try:
        return cast(str, os.fspath(value))
    except TypeError:
        raise ConfigurationError(
            f"{where} must be a file path, got {value!r}."
        ) from None


def _inliner(value: Any, where: str) -> Any:
    from ..compose.css import get_inliner

    try:
        get_inliner(value)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    return value


def _mechanism(value: Any, where: str) -> str:
    from ..transport.sasl import MECHANISMS

    if isinstance(value, str) and value.strip().lower() in MECHANISMS:
        return value.strip().lower()
    raise ConfigurationError(
        f"{where} must be one of {', '.join(sorted(MECHANISMS))}, got {value!r}."
    )


def _anything(value: Any, where: str) -> Any:
    return value  # token_provider: resolved with the username in _check_auth()


def _defaults(value: Any, where: str) -> Any:
    from ..outbound.defaults import parse_defaults

    return parse_defaults(value, where)


def _allowed_recipients(value: Any, where: str) -> Any:
    from ..outbound.recipients import parse_allowed

    return parse_allowed(value, where)


def _redirect_to(value: Any, where: str) -> Any:
    from ..outbound.recipients import parse_redirect

    return parse_redirect(value, where)


def _dkim(value: Any, where: str) -> Any:
    from ..outbound.dkim import parse_dkim

    return parse_dkim(value, where)


def _cache(value: Any, where: str) -> str | None:
    if value is None:
        return None
    from django.conf import settings

    if isinstance(value, str) and value in getattr(settings, "CACHES", {}):
        return value
    raise ConfigurationError(
        f"{where} must be an alias of the CACHES setting (or None: limits per "
        f"process), got {value!r}."
    )


@dataclass(frozen=True)
class Option:
    """One backend option: its keyword, its legacy setting, default and check.

    ``transport`` options configure the SMTP transport (``TransportConfig``);
    the others configure how every backend prepares a message (CSS inlining),
    so the memory and console backends take them too.
    """

    name: str
    setting: str
    default: Any
    check: Check
    transport: bool = True
    limit: bool = False
    """A shared sending limit (``backends/limits.py``): neither transport nor
    preparation."""


#: Every option the backend takes, in documentation order. Django's own first.
OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("host", "EMAIL_HOST", "localhost", any_text),
        Option("port", "EMAIL_PORT", None, _port),
        Option("username", "EMAIL_HOST_USER", "", any_text),
        Option("password", "EMAIL_HOST_PASSWORD", "", any_text),
        Option("use_tls", "EMAIL_USE_TLS", False, flag),
        Option("use_ssl", "EMAIL_USE_SSL", False, flag),
        Option("timeout", "EMAIL_TIMEOUT", 30.0, _timeout),
        Option("data_timeout", "EMAIL_FLUXMAIL_DATA_TIMEOUT", 120.0, _timeout),
        Option("ssl_certfile", "EMAIL_SSL_CERTFILE", None, _file),
        Option("ssl_keyfile", "EMAIL_SSL_KEYFILE", None, _file),
        Option("max_retries", "EMAIL_FLUXMAIL_MAX_RETRIES", 0, count),
        Option("retry_delay", "EMAIL_FLUXMAIL_RETRY_DELAY", 1.0, _seconds),
        Option("retry_max_delay", "EMAIL_FLUXMAIL_RETRY_MAX_DELAY", 30.0, _seconds),
        Option("retry_uncertain", "EMAIL_FLUXMAIL_RETRY_UNCERTAIN", False, flag),
        Option("pool_size", "EMAIL_FLUXMAIL_POOL_SIZE", 10, count),
        Option(
            "max_connection_age",
            "EMAIL_FLUXMAIL_MAX_CONNECTION_AGE",
            300.0,
            _seconds,
        ),
        Option(
            "max_messages_per_connection",
            "EMAIL_FLUXMAIL_MAX_MESSAGES_PER_CONNECTION",
            100,
            count,
        ),
        Option("pipelining", "EMAIL_FLUXMAIL_PIPELINING", True, flag),
        Option("chunking", "EMAIL_FLUXMAIL_CHUNKING", True, flag),
        Option("css_inline", "EMAIL_FLUXMAIL_CSS_INLINE", False, flag, transport=False),
        Option(
            "css_inliner",
            "EMAIL_FLUXMAIL_CSS_INLINER",
            "css_inline",
            _inliner,
            transport=False,
        ),
        # OAuth2 sign-in (docs/oauth2.md); checked together in _check_auth().
        Option("auth_mechanism", "EMAIL_FLUXMAIL_AUTH_MECHANISM", "auto", _mechanism),
        Option("token_provider", "EMAIL_FLUXMAIL_TOKEN_PROVIDER", None, _anything),
        Option(
            "token_refresh_margin",
            "EMAIL_FLUXMAIL_TOKEN_REFRESH_MARGIN",
            300.0,
            _seconds,
        ),
        # Outbound policies (docs/outbound-policies.md), applied while preparing.
        Option("defaults", "EMAIL_FLUXMAIL_DEFAULTS", None, _defaults, transport=False),
        Option(
            "allowed_recipients",
            "EMAIL_FLUXMAIL_ALLOWED_RECIPIENTS",
            None,
            _allowed_recipients,
            transport=False,
        ),
        Option(
            "redirect_to",
            "EMAIL_FLUXMAIL_REDIRECT_TO",
            None,
            _redirect_to,
            transport=False,
        ),
        Option("dkim", "EMAIL_FLUXMAIL_DKIM", None, _dkim, transport=False),
        # Limits shared by every process (docs/routing-and-limits.md#limits).
        *(
            Option(
                name,
                f"EMAIL_FLUXMAIL_{name.upper()}",
                None,
                optional_positive_count,
                False,
                True,
            )
            for name in ("max_per_second", "max_per_minute", "max_per_hour")
        ),
        Option(
            "max_per_day",
            "EMAIL_FLUXMAIL_MAX_PER_DAY",
            None,
            optional_positive_count,
            False,
            True,
        ),
        Option(
            "max_connections",
            "EMAIL_FLUXMAIL_MAX_CONNECTIONS",
            None,
            optional_positive_count,
            False,
            True,
        ),
        Option(
            "limits_cache", "EMAIL_FLUXMAIL_LIMITS_CACHE", None, _cache, False, True
        ),
        Option("limit_wait", "EMAIL_FLUXMAIL_LIMIT_WAIT", 10.0, _seconds, False, True),
        # Connect + TLS handshake + greeting; None: 10 s, or timeout if smaller
        # (TransportConfig.greeting_timeout).
        Option("connect_timeout", "EMAIL_FLUXMAIL_CONNECT_TIMEOUT", None, _timeout),
    )
}

#: The options of the preparation every backend shares (memory, console, SMTP).
#: The options that become ``TransportConfig`` fields.
TRANSPORT_OPTIONS: tuple[str, ...] = tuple(
    name for name, option in OPTIONS.items() if option.transport
)
PREPARATION_OPTIONS: tuple[str, ...] = tuple(
    name
    for name, option in OPTIONS.items()
    if not option.transport and not option.limit
)
#: The shared sending limits of a mailer (``backends/limits.py``).
LIMIT_OPTIONS: tuple[str, ...] = tuple(
    name for name, option in OPTIONS.items() if option.limit
)

#: Django's backend falls back to the setting when these are falsy, not just None.
_FALSY_MEANS_UNSET = {"host", "port"}


_UNSET = object()


def _setting(name: str) -> Any:
    try:
        return legacy_setting(name)
    except AttributeError:
        return _UNSET


def _default_port(use_tls: bool, use_ssl: bool) -> int:
    return 465 if use_ssl else 587 if use_tls else 25


def resolve_options(
    given: dict[str, Any],
    *,
    alias: str | None = None,
    ignore: Iterable[str] = (),
) -> dict[str, Any]:
    """Return every option's checked value for a backend built with ``given``.

    ``alias`` is the ``MAILERS`` alias (Django 6.1) or None for the ``EMAIL_*``
    settings. ``ignore`` lists keywords Django passes that are not ours. An
    error about a ``MAILERS`` entry is also Django's ``InvalidMailer``.
    """
    try:
        return _resolve_options(given, alias=alias, ignore=ignore)
    except ConfigurationError as exc:
        raise _for_mailer(exc, alias) from None


def _for_mailer(exc: ConfigurationError, alias: str | None) -> ConfigurationError:
    if alias is None or isinstance(exc, MailerConfigurationError):
        return exc
    return MailerConfigurationError(exc.message, code=exc.code)


def _resolve_options(
    given: dict[str, Any], *, alias: str | None, ignore: Iterable[str]
) -> dict[str, Any]:
    # Django 6.1's get_connection() marks every override it passes as "ignore if
    # unknown"; of those only fail_silently is not an option of ours, so a typo
    # such as get_connection(max_retry=5) is still reported.
    ignored = set(ignore) & {"fail_silently"}
    unknown = [name for name in given if name not in OPTIONS and name not in ignored]
    if unknown:
        raise ConfigurationError(unknown_options_message(unknown, alias))

    resolved = {
        name: _resolve_one(option, given.get(name), alias)
        for name, option in OPTIONS.items()
    }

    if alias is not None and not given.get("host"):
        raise ConfigurationError(
            f"MAILERS[{alias!r}]: OPTIONS must define 'host'. Name the SMTP "
            "server to send through (as for Django's own SMTP backend).",
            code="no_relay",
        )
    if not resolved["host"].strip():
        raise ConfigurationError(
            f"{_option_label('host', alias, 'EMAIL_HOST')} is empty: name the SMTP "
            "server to send through.",
            code="no_relay",
        )
    if resolved["use_tls"] and resolved["use_ssl"]:
        raise ConfigurationError(_tls_and_ssl_message(alias))
    if resolved["port"] is None:
        resolved["port"] = _default_port(resolved["use_tls"], resolved["use_ssl"])
    _check_auth(resolved, alias)
    return resolved


#: Django's own words (its backend raises them), then our hint.
TLS_AND_SSL = (
    "EMAIL_USE_TLS/EMAIL_USE_SSL are mutually exclusive, so only set one of "
    "those settings to True."
)
TLS_AND_SSL_MAILER = (
    "The 'use_ssl' and 'use_tls' OPTIONS are incompatible. Set at most one of "
    "them to True."
)
_TLS_OR_SSL_HINT = (
    "Set use_tls for STARTTLS (port 587) or use_ssl for implicit TLS (port 465)."
)


def _tls_and_ssl_message(alias: str | None) -> str:
    if alias is None:
        return f"{TLS_AND_SSL} {_TLS_OR_SSL_HINT}"
    return f"MAILERS[{alias!r}]: {TLS_AND_SSL_MAILER} {_TLS_OR_SSL_HINT}"


def _check_auth(resolved: dict[str, Any], alias: str | None) -> None:
    """An OAuth2 mechanism needs a provider and a mailbox, and no password: with
    one set, a refused token would otherwise look like a password problem."""
    from ..transport.sasl import OAUTH_MECHANISMS

    mechanism = resolved["auth_mechanism"]
    label = _option_label("auth_mechanism", alias, "EMAIL_FLUXMAIL_AUTH_MECHANISM")
    provider_label = _option_label(
        "token_provider", alias, "EMAIL_FLUXMAIL_TOKEN_PROVIDER"
    )
    if mechanism not in OAUTH_MECHANISMS:
        if resolved["token_provider"] is not None:
            raise ConfigurationError(
                f"{provider_label} is set but {label} is {mechanism!r}: set it to "
                "'xoauth2' (Microsoft 365, Gmail) or 'oauthbearer'.",
                code="oauth_misconfigured",
            )
        return
    if resolved["password"]:
        raise ConfigurationError(
            f"{label} is {mechanism!r} and a password is set "
            f"({_option_label('password', alias, 'EMAIL_HOST_PASSWORD')}): "
            "remove the password; the token from token_provider signs in.",
            code="oauth_misconfigured",
        )
    if not resolved["username"]:
        raise ConfigurationError(
            f"{label} is {mechanism!r} but no username is set: set "
            f"{_option_label('username', alias, 'EMAIL_HOST_USER')} to the "
            "mailbox the token is for.",
            code="oauth_misconfigured",
        )
    if resolved["token_provider"] is None:
        raise ConfigurationError(
            f"{label} is {mechanism!r} but {provider_label} is not set: name a "
            "callable returning an access token, or a provider (see "
            "docs/oauth2.md).",
            code="oauth_misconfigured",
        )
    from ..oauth.settings import resolve_provider

    resolved["token_provider"] = resolve_provider(
        resolved["token_provider"], provider_label, username=resolved["username"]
    )


def _resolve_one(option: Option, value: Any, alias: str | None) -> Any:
    name = option.name
    unset = (not value) if name in _FALSY_MEANS_UNSET else value is None
    if not unset:
        where = _option_label(name, alias)
    elif alias is None and (value := _setting(option.setting)) is not _UNSET:
        where = option.setting
    else:
        value, where = option.default, name
    if name == "timeout" and value is None:
        value = option.default  # Django's EMAIL_TIMEOUT defaults to None: never.
    if name in ("username", "password") and alias is not None and unset:
        return None  # A MAILERS entry ignores EMAIL_HOST_USER: None, as Django.
    return value if value is None else option.check(value, where)


def resolve_preparation_options(
    given: dict[str, Any],
    *,
    alias: str | None = None,
    ignore: Iterable[str] = (),
    backend: str = "Backend",
) -> dict[str, Any]:
    """Like :func:`resolve_options`, for backends that send nothing over SMTP.

    Only the preparation options (``css_inline``, ...) are read and checked.
    Transport options (``host``, ``password``...) are accepted and ignored, so
    a project can swap ``BACKEND`` for the memory or console backend without
    touching ``OPTIONS``; any other keyword is an error.
    """
    ignored = set(ignore) & {"fail_silently"}  # as in resolve_options
    unknown = [name for name in given if name not in OPTIONS and name not in ignored]
    try:
        if unknown:
            raise ConfigurationError(unknown_options_message(unknown, alias, backend))
        return {
            name: _resolve_one(OPTIONS[name], given.get(name), alias)
            for name in PREPARATION_OPTIONS
        }
    except ConfigurationError as exc:
        raise _for_mailer(exc, alias) from None


def settings_for(options: dict[str, Any]) -> dict[str, Any]:
    """Rename backend options to their settings (``max_retries`` ->
    ``EMAIL_FLUXMAIL_MAX_RETRIES``), for projects on the ``EMAIL_*`` settings."""
    return {OPTIONS[name].setting: value for name, value in options.items()}


def _option_label(name: str, alias: str | None, setting: str | None = None) -> str:
    if alias is not None:
        return f"MAILERS[{alias!r}]['OPTIONS'][{name!r}]"
    if setting is not None:
        return f"{setting} (or the {name!r} option)"
    return f"the {name!r} option"


def unknown_options_message(
    unknown: list[str], alias: str | None, backend: str = "FluxMailBackend"
) -> str:
    """Django's words (``MAILERS['x']: Unknown options 'a', 'b'.``), then a
    suggestion for each likely typo and the valid names."""
    where = f"MAILERS[{alias!r}]: " if alias is not None else f"{backend}: "
    names = ", ".join(repr(name) for name in unknown)
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, OPTIONS, n=1)
        if close:
            hints.append(f"did you mean {close[0]!r} for {name!r}?")
    hint = f" ({'; '.join(hints)})" if hints else ""
    return f"{where}Unknown options {names}.{hint} Valid options: {', '.join(OPTIONS)}."
