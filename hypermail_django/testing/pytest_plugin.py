"""pytest fixtures for projects that send mail with hypermail-django.

Registered through the ``pytest11`` entry point, so installing the package is
enough (or ``-p hypermail_django.testing.pytest_plugin``). Nothing here runs unless a
test asks for a fixture: no autouse fixture, no settings touched at import, and
Django and aiosmtpd are imported only inside the fixtures.

Fixtures:

``smtp_server``
    a real SMTP server (``SMTPTestServer``) on 127.0.0.1 for the test, whose
    faults the test scripts per command: ``fail("RCPT", "451 ...")``,
    ``drop("DATA_END")``, ``delay("MAIL", 0.2)``, ``hang("DATA_END")``.
    ``@pytest.mark.smtp_server(starttls=True, auth={"user": "pw"})`` passes
    options to the server.
``smtp_mailer``
    ``smtp_server``, with ``FluxMailBackend`` made Django's mailer and aimed
    at it (TLS mode and a single AUTH user included). Its options come from
    the ``smtp_mailer_options`` fixture (override it in your conftest).
``mail_outbox``
    ``MemoryBackend`` made Django's mailer; returns the live outbox (an
    :class:`~hypermail_django.testing.outbox.Outbox`), empty at the start and end of
    the test. Options from the ``mail_outbox_options`` fixture.

Assertion helpers live in :mod:`hypermail_django.testing.assertions`
(``assert_sent``, ``assert_sent_count``, ``assert_not_sent``) and on the outbox.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from . import SMTPTestServer
    from .outbox import Outbox

FLUX = "hypermail_django.backends.FluxMailBackend"
MEMORY = "hypermail_django.backends.MemoryBackend"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "smtp_server(**options): keyword arguments for the SMTPTestServer of the "
        "smtp_server fixture (starttls=True, auth={'user': 'password'}, ...).",
    )


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[SMTPTestServer]:
    """A real SMTP server on 127.0.0.1 for one test; script its faults."""
    from . import SMTPTestServer

    marker = request.node.get_closest_marker("smtp_server")
    options = dict(marker.kwargs) if marker is not None else {}
    with SMTPTestServer(**options) as server:
        yield server


@pytest.fixture
def smtp_mailer_options() -> dict[str, Any]:
    """Backend options for ``smtp_mailer``, on top of host and port.

    Retries are on and do not wait, so a scripted ``451`` is retried at once.
    Override this fixture to test your own options.
    """
    return {"max_retries": 2, "retry_delay": 0.0}


@pytest.fixture
def smtp_mailer(
    smtp_server: SMTPTestServer,
    smtp_mailer_options: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[SMTPTestServer]:
    """Make ``FluxMailBackend`` Django's mailer, aimed at ``smtp_server``."""
    options: dict[str, Any] = {"host": smtp_server.host, "port": smtp_server.port}
    if smtp_server.starttls or smtp_server.implicit_tls:
        assert smtp_server.certs is not None
        monkeypatch.setenv("SSL_CERT_FILE", smtp_server.certs.ca_file)
        options["use_tls" if smtp_server.starttls else "use_ssl"] = True
    if smtp_server.auth is not None and len(smtp_server.auth) == 1:
        ((options["username"], options["password"]),) = smtp_server.auth.items()
    options.update(smtp_mailer_options)
    with _use_mailer(FLUX, options):
        try:
            yield smtp_server
        finally:
            _close_pool(options)


@pytest.fixture
def mail_outbox_options() -> dict[str, Any]:
    """Backend options for ``mail_outbox`` (e.g. ``{"css_inline": True}``).

    Django's test runner drops ``MAILERS`` ``OPTIONS``; override this fixture
    to test with the options production uses.
    """
    return {}


@pytest.fixture
def mail_outbox(mail_outbox_options: dict[str, Any]) -> Iterator[Outbox]:
    """Make ``MemoryBackend`` Django's mailer; return its outbox, emptied."""
    from .outbox import Outbox, clear_outbox

    clear_outbox()
    with _use_mailer(MEMORY, mail_outbox_options):
        try:
            yield Outbox()
        finally:
            clear_outbox()


@contextlib.contextmanager
def _use_mailer(backend: str, options: dict[str, Any]) -> Iterator[None]:
    """Make ``backend`` with ``options`` the default mailer inside the block.

    Every ``MAILERS`` alias on Django 6.1 (as Django's test runner does with
    locmem), else ``EMAIL_BACKEND`` and the ``EMAIL_*`` settings.
    """
    from django.test import override_settings

    from ..compat import MAILERS_SUPPORTED, mailers_configured
    from ..conf.mailer_options import settings_for

    if mailers_configured():
        from django.conf import settings

        aliases = set(settings.MAILERS) | {"default"}
        mailers = {
            alias: {"BACKEND": backend, "OPTIONS": dict(options)} for alias in aliases
        }
        with override_settings(MAILERS=mailers):
            yield
        return
    overrides = override_settings(EMAIL_BACKEND=backend, **settings_for(options))
    with _quiet_legacy_settings(MAILERS_SUPPORTED):
        overrides.enable()
    try:
        yield
    finally:
        with _quiet_legacy_settings(MAILERS_SUPPORTED):
            overrides.disable()


@contextlib.contextmanager
def _quiet_legacy_settings(deprecated: bool) -> Iterator[None]:
    """Django 6.1 deprecates the EMAIL_* settings; overriding them for a test
    is not the project's use of them, so keep that warning out of the test."""
    with warnings.catch_warnings():
        if deprecated:
            from django.utils.deprecation import RemovedInDjango2028Warning

            warnings.simplefilter("ignore", RemovedInDjango2028Warning)
        yield


def _close_pool(options: dict[str, Any]) -> None:
    """QUIT the connections pooled for the test server before it stops."""
    from ..backends import FluxMailBackend
    from ..transport import get_pool

    get_pool(FluxMailBackend(**options).transport_config).close()
