"""Read ``FLUXMAIL_*`` environment variables into backend options.

Twelve-factor deployments keep credentials in the environment. On Django 6.1::

    MAILERS = {"default": {"BACKEND": "hypermail_django.backends.FluxMailBackend",
                           "OPTIONS": options_from_env()}}

and with the ``EMAIL_*`` settings (Django 5.2/6.0)::

    globals().update(settings_from_env())
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..exceptions import ConfigurationError
from .mailer_options import OPTIONS, settings_for

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(raw: str, variable: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(
        f"{variable} must be one of 1/0, true/false, yes/no, on/off; got {raw!r}."
    )


def _parser(kind: type, what: str) -> Any:
    def parse(raw: str, variable: str) -> Any:
        try:
            return kind(raw.strip())
        except ValueError:
            raise ConfigurationError(
                f"{variable} must be {what}, got {raw!r}."
            ) from None

    return parse


def _raw(raw: str, variable: str) -> str:
    return raw


#: Environment variable -> (backend option, parser).
ENVIRONMENT: dict[str, tuple[str, Any]] = {
    "FLUXMAIL_HOST": ("host", _raw),
    "FLUXMAIL_PORT": ("port", _parser(int, "a port number")),
    "FLUXMAIL_USERNAME": ("username", _raw),
    "FLUXMAIL_PASSWORD": ("password", _raw),
    "FLUXMAIL_TLS": ("use_tls", _parse_bool),
    "FLUXMAIL_SSL": ("use_ssl", _parse_bool),
    "FLUXMAIL_TIMEOUT": ("timeout", _parser(float, "a number of seconds")),
    "FLUXMAIL_MAX_RETRIES": ("max_retries", _parser(int, "a whole number")),
    "FLUXMAIL_RETRY_DELAY": ("retry_delay", _parser(float, "a number of seconds")),
    "FLUXMAIL_DATA_TIMEOUT": ("data_timeout", _parser(float, "a number of seconds")),
    "FLUXMAIL_RETRY_UNCERTAIN": ("retry_uncertain", _parse_bool),
    "FLUXMAIL_AUTH_MECHANISM": ("auth_mechanism", _raw),
    # A dotted path or a provider name; the provider's own arguments (secrets
    # included) are read from FLUXMAIL_OAUTH_<ARGUMENT> (oauth/settings.py).
    "FLUXMAIL_TOKEN_PROVIDER": ("token_provider", _raw),
    "FLUXMAIL_TOKEN_REFRESH_MARGIN": (
        "token_refresh_margin",
        _parser(float, "a number of seconds"),
    ),
    # Staging policies: comma-separated lists, so a deploy can turn them on.
    "FLUXMAIL_ALLOWED_RECIPIENTS": ("allowed_recipients", _raw),
    "FLUXMAIL_REDIRECT_TO": ("redirect_to", _raw),
    # Shared sending limits: a provider's quota differs per deployment.
    **{
        f"FLUXMAIL_{name.upper()}": (name, _parser(int, "a whole number"))
        for name in (
            "max_per_second",
            "max_per_minute",
            "max_per_hour",
            "max_per_day",
            "max_connections",
        )
    },
    "FLUXMAIL_LIMITS_CACHE": ("limits_cache", _raw),
    "FLUXMAIL_LIMIT_WAIT": ("limit_wait", _parser(float, "a number of seconds")),
    "FLUXMAIL_CONNECT_TIMEOUT": (
        "connect_timeout",
        _parser(float, "a number of seconds"),
    ),
}


def options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Backend options (lowercase keywords) from the variables that are set."""
    environ = os.environ if environ is None else environ
    options: dict[str, Any] = {}
    for variable, (option, parse) in ENVIRONMENT.items():
        if variable in environ:
            value = parse(environ[variable], variable)
            OPTIONS[option].check(value, variable)
            options[option] = value
    return options


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The same values under their settings names (``EMAIL_HOST``, ...)."""
    return settings_for(options_from_env(environ))
