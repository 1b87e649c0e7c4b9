"""The project's configured mailers, read from settings without building them.

System checks and ``manage.py mailcheck`` look at every mailer a project
configures: each ``MAILERS`` alias on Django 6.1, or the one mailer that
``EMAIL_BACKEND`` and the ``EMAIL_*`` settings describe on Django 5.2 and 6.0
(and on 6.1 without ``MAILERS``), plus the aliases of ``HYPERMAIL_MAILERS``,
the ``MAILERS`` shape for 5.2 and 6.0 (the bridge to 6.1). They must neither
connect anywhere nor build a backend they do not understand (a file-based
backend creates its directory), so this module describes mailers first, and
builds only a ``FluxMailBackend``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.module_loading import import_string

from ..backends import FluxMailBackend
from ..compat import legacy_setting, mailers_configured
from ..exceptions import ConfigurationError

DEFAULT_ALIAS = "default"
#: What Django uses when ``EMAIL_BACKEND`` or a ``MAILERS`` ``BACKEND`` is unset.
DJANGO_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@dataclass(frozen=True)
class MailerSpec:
    """One configured mailer: its alias, backend path and raw options."""

    alias: str
    backend: str
    options: dict[str, Any] = field(default_factory=dict)
    """``MAILERS[alias]["OPTIONS"]``; empty for a mailer made of ``EMAIL_*``
    settings (the backend reads those itself)."""
    legacy: bool = False
    """True when the mailer comes from ``EMAIL_BACKEND`` and ``EMAIL_*``."""
    problem: str | None = None
    """Why the entry cannot be used at all (not a dict...), reported on use."""
    setting: str = "MAILERS"
    """The setting the entry comes from: ``MAILERS`` or ``HYPERMAIL_MAILERS``."""

    @property
    def label(self) -> str:
        """Where the user configures it, for messages: ``MAILERS['x']`` or
        ``EMAIL_BACKEND``."""
        return "EMAIL_BACKEND" if self.legacy else f"{self.setting}[{self.alias!r}]"

    def backend_class(self) -> type:
        """Import the backend class; ConfigurationError if it cannot be."""
        if self.problem is not None:
            raise ConfigurationError(self.problem)
        try:
            cls = import_string(self.backend)
        except ImportError as error:
            raise ConfigurationError(
                f"{self.label} names backend {self.backend!r}, which cannot be "
                f"imported: {error}"
            ) from error
        if not isinstance(cls, type):
            raise ConfigurationError(
                f"{self.label} names {self.backend!r}, which is not a class."
            )
        return cls

    def is_fluxmail(self) -> bool:
        """Whether the backend is FluxMailBackend or a subclass of it."""
        try:
            return issubclass(self.backend_class(), FluxMailBackend)
        except ConfigurationError:
            return False

    def build(self) -> FluxMailBackend:
        """Construct the mailer's FluxMailBackend, as Django would; no connection.

        Raises ConfigurationError: ``unsupported_backend`` when the mailer is
        not a FluxMailBackend, ``invalid_config`` for an unusable option.
        """
        cls = self.backend_class()
        if not issubclass(cls, FluxMailBackend):
            raise ConfigurationError(
                f"{self.label} uses {self.backend}, not FluxMailBackend: only "
                "hypermail_django.backends.FluxMailBackend (or a subclass) can be "
                "checked.",
                code="unsupported_backend",
            )
        if self.legacy:
            backend: FluxMailBackend = cls()
        else:
            backend = cls(alias=self.alias, **self.options)
        return backend


def bridge_mailers() -> dict[str, Any]:
    """``HYPERMAIL_MAILERS``: the ``MAILERS`` shape for Django 5.2 and 6.0.

    Read only when the project has no ``MAILERS`` (Django 6.1 ignores it
    then); its ``default`` entry, when present, replaces ``EMAIL_BACKEND``
    for the helpers of this app.
    """
    if mailers_configured():
        return {}
    value = getattr(settings, "HYPERMAIL_MAILERS", None) or {}
    if not isinstance(value, dict):
        raise ConfigurationError(
            "HYPERMAIL_MAILERS must be a dict of aliases to "
            f"{{'BACKEND': ..., 'OPTIONS': {{...}}}}, got a {type(value).__name__}."
        )
    return value


def configured_mailers() -> list[MailerSpec]:
    """Every mailer the settings configure, ``default`` first."""
    if not mailers_configured():
        bridge = bridge_mailers()
        specs = [] if DEFAULT_ALIAS in bridge else [_legacy_spec()]
        aliases = sorted(bridge, key=lambda alias: (alias != DEFAULT_ALIAS, alias))
        return specs + [_bridge_spec(alias, bridge[alias]) for alias in aliases]
    mailers = settings.MAILERS
    aliases = sorted(mailers, key=lambda alias: (alias != DEFAULT_ALIAS, alias))
    return [_spec(alias, mailers[alias]) for alias in aliases]


def get_mailer_spec(using: str | None = None) -> MailerSpec:
    """The description of the mailer ``using`` names (None: the default one).

    Raises ConfigurationError (code ``unknown_mailer``) for an alias the
    settings do not define.
    """
    alias = using or DEFAULT_ALIAS
    if not mailers_configured():
        bridge = bridge_mailers()
        if alias in bridge:
            return _bridge_spec(alias, bridge[alias])
        if alias != DEFAULT_ALIAS:
            known = "".join(f", {name!r}" for name in bridge)
            raise ConfigurationError(
                f"Unknown mailer {alias!r}: without a MAILERS setting the "
                f"mailers are {DEFAULT_ALIAS!r} (EMAIL_BACKEND){known} "
                "(HYPERMAIL_MAILERS).",
                code="unknown_mailer",
            )
        return _legacy_spec()
    mailers = settings.MAILERS
    if alias not in mailers:
        known = ", ".join(repr(name) for name in mailers) or "none"
        raise ConfigurationError(
            f"Unknown mailer {alias!r}: MAILERS defines {known}.",
            code="unknown_mailer",
        )
    return _spec(alias, mailers[alias])


def get_mailer(using: str | None = None, **overrides: Any) -> BaseEmailBackend:
    """A new instance of the mailer ``using`` names, as ``send_mail(using=...)``
    would use it: ``django.core.mail.mailers[using]`` with Django 6.1's
    ``MAILERS``; otherwise ``EMAIL_BACKEND`` built with ``overrides``, as
    ``get_connection(**overrides)`` builds it -- without calling
    ``get_connection()``, which warns on Django 6.1 on every call.

    The one way every helper of ours (async, bulk, background, password reset)
    finds a mailer.
    """
    if mailers_configured():
        if overrides:
            raise TypeError(
                f"{', '.join(sorted(overrides))} cannot be passed with MAILERS; "
                "set them in the mailer's OPTIONS."
            )
        from django.core.mail import mailers

        return mailers[using or DEFAULT_ALIAS]
    bridge = bridge_mailers()
    if (using or DEFAULT_ALIAS) in bridge:
        spec = get_mailer_spec(using)
        options = {**spec.options, **overrides}
        built: BaseEmailBackend = spec.backend_class()(alias=spec.alias, **options)
        return built
    if using not in (None, DEFAULT_ALIAS):
        raise ConfigurationError(
            f"using={using!r} names a mailer, but this project has no MAILERS "
            "setting (Django 6.1+) and HYPERMAIL_MAILERS does not define it, so "
            "the only mailer is EMAIL_BACKEND. Leave using unset, or define "
            "MAILERS (or HYPERMAIL_MAILERS on Django 5.2/6.0).",
            code="unknown_mailer",
        )
    backend: BaseEmailBackend = import_string(_legacy_spec().backend)(**overrides)
    return backend


def _legacy_spec() -> MailerSpec:
    try:
        backend = legacy_setting("EMAIL_BACKEND")
    except AttributeError:
        backend = DJANGO_SMTP_BACKEND
    return MailerSpec(DEFAULT_ALIAS, str(backend), {}, legacy=True)


def _bridge_spec(alias: str, config: Any) -> MailerSpec:
    return _spec(alias, config, setting="HYPERMAIL_MAILERS")


def _spec(alias: str, config: Any, setting: str = "MAILERS") -> MailerSpec:
    label = f"{setting}[{alias!r}]"
    if not isinstance(config, dict):
        kind = type(config).__name__
        problem = f"{label} must be a dict with 'BACKEND' and 'OPTIONS', got a {kind}."
        return MailerSpec(alias, "", problem=problem, setting=setting)
    options = config.get("OPTIONS") or {}
    backend = str(config.get("BACKEND", DJANGO_SMTP_BACKEND))
    if not isinstance(options, dict):
        problem = f"{label}['OPTIONS'] must be a dict, got a {type(options).__name__}."
        return MailerSpec(alias, backend, problem=problem, setting=setting)
    return MailerSpec(alias, backend, options, setting=setting)
