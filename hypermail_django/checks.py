"""System checks for every configured mailer, run by ``manage.py check``.

They catch, before the first email is lost, what would otherwise surface on the
first send: options that cannot work together, a password about to cross the
network in clear text, a server that could hang a request forever, and (under
``check --deploy``) development settings left in production. They read the
settings only: nothing connects anywhere (``manage.py mailcheck`` does that).

IDs are stable and documented in ``docs/system-checks.md``:

* ``hypermail.E001`` use_tls and use_ssl both on
* ``hypermail.E002`` a port that is not a port number
* ``hypermail.E003`` any other option FluxMailBackend cannot use
* ``hypermail.E004`` a mailer whose backend cannot be imported
* ``hypermail.W001`` a password sent without TLS to a host that is not loopback
* ``hypermail.W002`` no timeout, or one longer than SMTP allows a server
* ``hypermail.W010`` (deploy) a development backend as a mailer
* ``hypermail.W011`` (deploy) ``DEFAULT_FROM_EMAIL`` at ``localhost``
* ``hypermail.W012`` (deploy) ``SERVER_EMAIL`` at ``localhost`` with ADMINS set
* ``hypermail.E020`` an OAuth2 ``auth_mechanism`` without a provider, or with a
  password
* ``hypermail.W020`` a password for Microsoft 365 or Gmail, whose password
  sign-in is ending
* ``hypermail.E040`` a ``HYPERMAIL_LOG_*`` setting the delivery log cannot use
* ``hypermail.E050`` a ``RoutingBackend`` option it cannot use
* ``hypermail.E051`` a router member that no mailer setting defines
* ``hypermail.E052`` a router that routes back to itself
* ``hypermail.W050`` a ``limits_cache`` whose ``MAX_ENTRIES`` cannot hold the limits
* ``hypermail.E030`` a DKIM option or key that cannot be used (unreadable, malformed)
* ``hypermail.E031`` a DKIM RSA key shorter than 1024 bits
* ``hypermail.W030`` a DKIM RSA key shorter than 2048 bits
* ``hypermail.W031`` (deploy) a staging policy on with ``DEBUG = False`` outside staging
* ``hypermail.W032`` (deploy) ``HYPERMAIL_ENVIRONMENT = "staging"`` and a mailer
  without a staging policy
* ``hypermail.E060`` ``ssl_certfile``/``ssl_keyfile`` naming no file
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.smtp import EmailBackend as DjangoSMTPBackend

from .backends import FluxMailBackend
from .compat import legacy_setting, mailers_configured
from .conf.mailer_options import OPTIONS
from .conf.mailers import DEFAULT_ALIAS, MailerSpec, configured_mailers
from .exceptions import ConfigurationError

TAGS = ("mail", "hypermail")

#: RFC 5321 section 4.5.3.2: the longest a client should wait for any reply
#: (the end of DATA) is 10 minutes. A longer timeout protects nothing.
LONGEST_SMTP_WAIT = 600.0

#: Backends that never deliver: fine in development, mail lost in production.
DEVELOPMENT_BACKENDS = frozenset(
    {
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",
        "hypermail_django.backends.MemoryBackend",
        "hypermail_django.backends.ConsoleBackend",
        "hypermail_django.backends.memory.MemoryBackend",
        "hypermail_django.backends.console.ConsoleBackend",
    }
)
#: Those Django's own ``mail.E001`` reports (Django 6.1, ``MAILERS['default']``).
_REPORTED_BY_DJANGO = frozenset(
    path for path in DEVELOPMENT_BACKENDS if path.startswith("django.")
)


@register(*TAGS)
def check_mailer_options(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E001-E004: options of each mailer that make it fail on first use."""
    messages: list[CheckMessage] = []
    for spec in configured_mailers():
        messages += _option_errors(spec)
    return messages


@register(*TAGS)
def check_mailer_security(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """W001-W002: mailers that would leak a password or hang a request."""
    messages: list[CheckMessage] = []
    for spec in configured_mailers():
        values = _smtp_values(spec)
        if values is not None:
            messages += _security_warnings(spec, values)
    return messages


@register(*TAGS)
def check_client_certificate_files(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E060: ``ssl_certfile``/``ssl_keyfile`` name no file, or a key alone.

    Like Django's backend, ours reads them only when TLS is first set up;
    this says it at start-up instead of at the first email."""
    messages: list[CheckMessage] = []
    for spec in configured_mailers():
        try:
            cls = spec.backend_class()
        except ConfigurationError:
            continue  # E004
        if not issubclass(cls, DjangoSMTPBackend):
            continue
        certfile, where_cert = _raw(spec, "ssl_certfile")
        keyfile, where_key = _raw(spec, "ssl_keyfile")
        if keyfile and not certfile:
            messages.append(
                Error(
                    f"{where_key} is set without {where_cert}: the first email "
                    "sent over TLS will fail.",
                    hint="Set ssl_certfile to the client certificate too.",
                    id="hypermail.E060",
                )
            )
        for name in ("ssl_certfile", "ssl_keyfile"):
            value, where = _raw(spec, name)
            if not value or not isinstance(value, (str, os.PathLike)):
                continue
            if not os.path.isfile(value):
                messages.append(
                    Error(
                        f"{where} names {os.fspath(value)!r}, which is not a "
                        "file: the first email sent over TLS will fail.",
                        hint="Point it at the PEM client certificate (or its "
                        "private key), or remove it.",
                        id="hypermail.E060",
                    )
                )
    return messages


@register(*TAGS)
def check_delivery_log_settings(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E040: the delivery log would fail to record every message."""
    from django.apps import apps

    if not apps.is_installed("hypermail_django.log"):
        return []
    from .conf.delivery_log import get_settings

    try:
        get_settings()
    except ConfigurationError as error:
        return [
            Error(
                _message(error),
                hint="See the settings table in docs/delivery-log.md.",
                id="hypermail.E040",
            )
        ]
    return []


@register(*TAGS, deploy=True)
def check_development_backends(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """W010: a mailer that never delivers, configured in production."""
    messages: list[CheckMessage] = []
    for spec in configured_mailers():
        if not _is_development_backend(spec):
            continue
        if (
            mailers_configured()
            and spec.alias == DEFAULT_ALIAS
            and spec.backend in _REPORTED_BY_DJANGO
        ):
            continue  # Django's own mail.E001 already says so.
        messages.append(
            Warning(
                f"{_where(spec)} uses {spec.backend}, a development backend: "
                "email sent through it is never delivered.",
                hint="Use hypermail_django.backends.FluxMailBackend (or another "
                "production backend) in the production settings.",
                id="hypermail.W010",
            )
        )
    return messages


@register(*TAGS, deploy=True)
def check_sender_addresses(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """W011-W012: sender addresses still at ``localhost`` (Django's defaults)."""
    messages: list[CheckMessage] = []
    if _at_localhost(settings.DEFAULT_FROM_EMAIL):
        messages.append(
            Warning(
                f"DEFAULT_FROM_EMAIL is {settings.DEFAULT_FROM_EMAIL!r}: mail "
                "from a localhost address is refused or marked as spam by most "
                "relays and receivers.",
                hint="Set DEFAULT_FROM_EMAIL to an address of a domain you send "
                "for, e.g. 'Example <noreply@example.com>'.",
                id="hypermail.W011",
            )
        )
    if (settings.ADMINS or settings.MANAGERS) and _at_localhost(settings.SERVER_EMAIL):
        messages.append(
            Warning(
                f"SERVER_EMAIL is {settings.SERVER_EMAIL!r}: error reports to "
                "ADMINS and MANAGERS come from a localhost address, which most "
                "relays refuse.",
                hint="Set SERVER_EMAIL to an address of a domain you send for.",
                id="hypermail.W012",
            )
        )
    return messages


@register(*TAGS)
def check_dkim(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E030, E031, W030: DKIM keys that cannot sign, or sign weakly."""
    from .outbound.dkim import RECOMMENDED_RSA_BITS

    messages: list[CheckMessage] = []
    for spec in configured_mailers():
        keys, error = _dkim_keys(spec)
        if error is not None:
            weak = error.code == "dkim_weak_key"
            messages.append(
                Error(
                    error.message,
                    hint="Generate a 2048-bit key: openssl genrsa -out dkim.pem 2048"
                    if weak
                    else "See the dkim option in docs/outbound-policies.md.",
                    id="hypermail.E031" if weak else "hypermail.E030",
                )
            )
        for key in keys:
            if key.key_type == "rsa" and key.bits < RECOMMENDED_RSA_BITS:
                messages.append(
                    Warning(
                        f"{_where(spec)} signs for {key.domain!r} (selector "
                        f"{key.selector!r}) with a {key.bits}-bit RSA key; some "
                        f"receivers want at least {RECOMMENDED_RSA_BITS} bits "
                        "(RFC 8301).",
                        hint="Publish a 2048-bit key under a new selector, then "
                        "switch to it.",
                        id="hypermail.W030",
                    )
                )
    return messages


@register(*TAGS, deploy=True)
def check_staging_policies(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """W031-W032: a staging policy where production is, or none in staging."""
    staging = getattr(settings, "HYPERMAIL_ENVIRONMENT", None) == "staging"
    messages: list[CheckMessage] = []
    for spec in configured_mailers():
        if not _prepares(spec):
            continue
        on = [
            name
            for name in ("allowed_recipients", "redirect_to")
            if _raw(spec, name)[0] is not None
        ]
        if on and not settings.DEBUG and not staging:
            messages.append(
                Warning(
                    f"{_where(spec)} has a staging policy ({', '.join(on)}) with "
                    "DEBUG = False: if this is production, mail to customers is "
                    "being kept back or redirected.",
                    hint="Remove the policy in production, or declare this a "
                    "staging environment with HYPERMAIL_ENVIRONMENT = 'staging'.",
                    id="hypermail.W031",
                )
            )
        if staging and not on:
            messages.append(
                Warning(
                    f"HYPERMAIL_ENVIRONMENT is 'staging', but {_where(spec)} has "
                    "no staging policy: it can mail anyone, customers included.",
                    hint="Set allowed_recipients (e.g. ['@example.com']) and/or "
                    "redirect_to on the mailer.",
                    id="hypermail.W032",
                )
            )
    return messages


def _prepares(spec: MailerSpec) -> bool:
    """Whether the mailer is one of ours (takes the outbound policy options)."""
    from .backends.base import PreparingBackendMixin

    try:
        return issubclass(spec.backend_class(), PreparingBackendMixin)
    except ConfigurationError:
        return False


def _dkim_keys(spec: MailerSpec) -> tuple[tuple[Any, ...], ConfigurationError | None]:
    """The mailer's DKIM keys, read as the backend would, or why they cannot be."""
    if not _prepares(spec):
        return (), None
    raw, where = _raw(spec, "dkim")
    try:
        return OPTIONS["dkim"].check(raw, where) or (), None
    except ConfigurationError as error:
        return (), error


# -- E001-E004 -------------------------------------------------------------------


def _option_errors(spec: MailerSpec) -> list[CheckMessage]:
    try:
        cls = spec.backend_class()
    except ConfigurationError as error:
        return [
            Error(
                error.message,
                hint="Fix the BACKEND path (or EMAIL_BACKEND).",
                id="hypermail.E004",
            )
        ]
    if not issubclass(cls, DjangoSMTPBackend):
        return []  # Not an SMTP backend: its options are not ours to judge.
    messages: list[CheckMessage] = []
    # What to build the backend with instead, so that E003 reports other
    # problems than the ones E001 and E002 already did.
    overrides: dict[str, Any] = {}
    use_tls, where_tls = _raw(spec, "use_tls")
    use_ssl, where_ssl = _raw(spec, "use_ssl")
    if _on(use_tls) and _on(use_ssl):
        overrides["use_ssl"] = False
        messages.append(
            Error(
                f"{where_tls} and {where_ssl} are both on: they are mutually "
                "exclusive, so no connection can be made.",
                hint="Set use_tls for STARTTLS (usually port 587) or use_ssl for "
                "implicit TLS (usually port 465), not both.",
                id="hypermail.E001",
            )
        )
    port, where_port = _raw(spec, "port")
    if port:  # 0, "" and None mean "the default port", as in Django.
        try:
            OPTIONS["port"].check(port, where_port)
        except ConfigurationError as error:
            overrides["port"] = 25
            messages.append(
                Error(
                    error.message,
                    hint="Use the relay's submission port: usually 587 with "
                    "use_tls, 465 with use_ssl, 25 without TLS.",
                    id="hypermail.E002",
                )
            )
    if _dkim_keys(spec)[1] is not None:
        overrides["dkim"] = ()  # E030/E031 report it; () means "no DKIM".
    if issubclass(cls, FluxMailBackend):
        try:
            _build(spec, cls, overrides)
        except ConfigurationError as error:
            if error.code == "oauth_misconfigured":
                messages.append(
                    Error(
                        f"{_where(spec)} cannot sign in: {error.message}",
                        hint="See docs/oauth2.md for auth_mechanism and "
                        "token_provider.",
                        id="hypermail.E020",
                    )
                )
            else:
                messages.append(
                    Error(
                        f"{_where(spec)} cannot be used: {_message(error)}",
                        hint="See the option table in docs/configuration.md.",
                        id="hypermail.E003",
                    )
                )
        except (ImproperlyConfigured, ValueError, TypeError) as error:
            messages.append(
                Error(
                    f"{_where(spec)} cannot be used: {_message(error)}",
                    hint="See the option table in docs/configuration.md.",
                    id="hypermail.E003",
                )
            )
    return messages


def _build(spec: MailerSpec, cls: type, overrides: dict[str, Any]) -> Any:
    if spec.legacy:
        return cls(**overrides)
    return cls(alias=spec.alias, **(spec.options | overrides))


# -- W001-W002 -------------------------------------------------------------------


def _smtp_values(spec: MailerSpec) -> dict[str, Any] | None:
    """host, port, username, password, use_tls, use_ssl and timeout as the
    mailer will use them; None when it is not an SMTP backend or cannot be
    built (E001-E004 report that)."""
    try:
        cls = spec.backend_class()
    except ConfigurationError:
        return None
    if not issubclass(cls, DjangoSMTPBackend):
        return None
    names = ("host", "port", "username", "password", "use_tls", "use_ssl", "timeout")
    if issubclass(cls, FluxMailBackend):
        try:
            backend = spec.build()
        except (ImproperlyConfigured, ValueError, TypeError):
            return None
        return {name: getattr(backend, name) for name in names}
    # Django's own backend: read what it would read, without building it
    # (building one warns on Django 6.1 outside MAILERS).
    return {name: _raw(spec, name)[0] for name in names}


def _security_warnings(spec: MailerSpec, values: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    host = str(values["host"] or "localhost")
    logs_in = bool(values["username"] and values["password"])
    secured = _on(values["use_tls"]) or _on(values["use_ssl"])
    if logs_in and not secured and not _is_loopback(host):
        messages.append(
            Warning(
                f"{_where(spec)} logs in as {values['username']!r} on {host} "
                "without TLS: the password crosses the network in clear text.",
                hint="Turn on use_tls (STARTTLS, usually port 587) or use_ssl "
                "(implicit TLS, usually port 465).",
                id="hypermail.W001",
            )
        )
    timeout = values["timeout"]
    if timeout is None:
        messages.append(
            Warning(
                f"{_where(spec)} has no timeout: a server that stops answering "
                "blocks the request (or worker) that sends mail forever.",
                hint="Set EMAIL_TIMEOUT (or the timeout option), e.g. 30; or use "
                "hypermail_django.backends.FluxMailBackend, which defaults to 30.",
                id="hypermail.W002",
            )
        )
    elif isinstance(timeout, (int, float)) and timeout > LONGEST_SMTP_WAIT:
        messages.append(
            Warning(
                f"{_where(spec)} has a timeout of {timeout:g} seconds, longer than "
                f"the {LONGEST_SMTP_WAIT:g} seconds SMTP allows a server for any "
                "reply: in effect no timeout.",
                hint="Use a timeout of at most 600 seconds; 30 suits most relays.",
                id="hypermail.W002",
            )
        )
    return messages


# -- W010 ------------------------------------------------------------------------


def _is_development_backend(spec: MailerSpec) -> bool:
    if spec.backend in DEVELOPMENT_BACKENDS:
        return True
    try:
        cls = spec.backend_class()
    except ConfigurationError:
        return False
    return any(issubclass(cls, dev) for dev in _development_classes())


def _development_classes() -> list[type]:
    """The development backend classes that exist (ours may not, yet)."""
    from django.utils.module_loading import import_string

    classes = []
    for path in DEVELOPMENT_BACKENDS:
        try:
            classes.append(import_string(path))
        except ImportError:
            continue
    return classes


# -- helpers ---------------------------------------------------------------------


def _raw(spec: MailerSpec, name: str) -> tuple[Any, str]:
    """An option as configured, without checks, and the name of where it is set.

    ``MAILERS`` options for a MAILERS mailer; the ``EMAIL_*`` setting else
    (read past Django 6.1's per-read deprecation warning).
    """
    if not spec.legacy:
        return spec.options.get(name), f"MAILERS[{spec.alias!r}]['OPTIONS'][{name!r}]"
    setting = OPTIONS[name].setting
    try:
        return legacy_setting(setting), setting
    except AttributeError:
        return None, setting


def _where(spec: MailerSpec) -> str:
    return "The EMAIL_BACKEND mailer" if spec.legacy else f"MAILERS[{spec.alias!r}]"


def _on(value: Any) -> bool:
    """Whether a TLS flag is on. Strings count as off here: E003 reports them."""
    return bool(value) and not isinstance(value, str)


def _is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _at_localhost(address: Any) -> bool:
    domain = parseaddr(str(address or ""))[1].rpartition("@")[2].lower()
    return domain in {"localhost", "localhost.localdomain"}


def _message(error: BaseException) -> str:
    return error.message if isinstance(error, ConfigurationError) else str(error)


# -- W020 ------------------------------------------------------------------------

#: Hosts whose password sign-in is ending: (provider, what happens, what to use).
PASSWORD_SUNSET = {
    "smtp.office365.com": (
        "Microsoft 365",
        "Exchange Online disables Basic authentication for SMTP AUTH by default "
        "at the end of December 2026 (new tenants never have it); the server "
        "then answers 535 5.7.139 or 550 5.7.30",
        "MicrosoftClientCredentials (docs/oauth2-microsoft.md)",
    ),
    "smtp.gmail.com": (
        "Gmail",
        "Google Workspace ended password sign-in for less secure apps in May "
        "2025; only app passwords of accounts with 2-Step Verification remain",
        "GoogleServiceAccount or RefreshToken (docs/oauth2-google.md)",
    ),
}


@register(*TAGS)
def check_mailer_password_sunset(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """W020: a password for a provider that is turning password sign-in off."""
    messages: list[CheckMessage] = []
    for spec in configured_mailers():
        values = _smtp_values(spec)
        if values is None or not (values["username"] and values["password"]):
            continue
        host = str(values["host"] or "").strip().lower().rstrip(".")
        if host not in PASSWORD_SUNSET:
            continue
        provider, deadline, use = PASSWORD_SUNSET[host]
        messages.append(
            Warning(
                f"{_where(spec)} signs in to {provider} ({host}) with a password: "
                f"{deadline}.",
                hint="Use hypermail_django.backends.FluxMailBackend with "
                "auth_mechanism='xoauth2', no password, and a token_provider: "
                f"{use}.",
                id="hypermail.W020",
            )
        )
    return messages


@register(*TAGS)
def check_routing(
    app_configs: Sequence[AppConfig] | None, **kwargs: Any
) -> list[CheckMessage]:
    """E050-E052: routers that would fail on their first send; W050: shared
    limits in a cache that would cull their slots."""
    from .routing.checks import limit_warnings, routing_errors

    return routing_errors() + limit_warnings()
