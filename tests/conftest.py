"""Fixtures: real in-process SMTP servers, and a backend factory pointed at them."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from django.test import override_settings

from hypermail_django.backends import FluxMailBackend
from hypermail_django.compat import MAILERS_SUPPORTED, MODERN_EMAIL_API
from hypermail_django.conf.mailer_options import settings_for
from hypermail_django.testing import SMTPTestServer, TLSCertificates
from hypermail_django.transport import close_all_pools, retry
from hypermail_django.transport.async_pool import aclose_async_pools

BACKEND = "hypermail_django.backends.FluxMailBackend"
PASSWORD = "s3cr3t-Pa55word!"

requires_mailers = pytest.mark.skipif(
    not MAILERS_SUPPORTED, reason="MAILERS is new in Django 6.1"
)


@pytest.fixture(autouse=True)
def fresh_pools() -> Iterator[None]:
    """Each test starts with no pooled connections and leaves none behind."""
    close_all_pools()
    yield
    close_all_pools()


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the retry policy's waits instead of sleeping through them."""
    recorded: list[float] = []

    async def record_async(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(retry, "sleep", recorded.append)
    monkeypatch.setattr(retry, "async_sleep", record_async)
    return recorded


@pytest_asyncio.fixture
async def close_async_pools() -> AsyncIterator[None]:
    """QUIT the test loop's pooled connections before pytest-asyncio closes it.

    A connection left in a closed loop's pool warns (an unclosed-transport
    ResourceWarning) whenever it is garbage-collected: in whatever test happens
    to run then. Every async test uses this fixture.
    """
    yield
    await aclose_async_pools()


@pytest.fixture(scope="session")
def certs() -> TLSCertificates:
    return TLSCertificates()


@pytest.fixture
def trust_ca(certs: TLSCertificates, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trust the test CA the way a deployment would: through SSL_CERT_FILE."""
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)


@pytest.fixture
def server() -> Iterator[SMTPTestServer]:
    with SMTPTestServer() as smtp:
        yield smtp


#: The dialogues a client picks from a server's EHLO: (PIPELINING, CHUNKING).
DIALOGUES = {
    "one-command-at-a-time": (False, False),
    "pipelining": (True, False),
    "chunking": (False, True),
    "pipelining+chunking": (True, True),
}


@pytest.fixture(params=list(DIALOGUES.values()), ids=list(DIALOGUES))
def either_dialogue_server(request: pytest.FixtureRequest) -> Iterator[SMTPTestServer]:
    """A server with and without RFC 2920 PIPELINING and RFC 3030 CHUNKING:
    modules that override ``server`` with it prove each behaviour holds in
    every dialogue."""
    pipelining, chunking = request.param
    with SMTPTestServer(pipelining=pipelining, chunking=chunking) as smtp:
        yield smtp


class Driver:
    """Sends through a ``FluxMailBackend`` with smtplib (``send_messages``) or
    aiosmtplib (``asend_messages``), so one test proves both drivers of the
    one SMTP dialogue. The async driver runs every send of a test on one event
    loop, so its pool lives across sends as an ASGI server's does."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop() if name == "aiosmtplib" else None

    def __repr__(self) -> str:
        return self.name

    def send(self, backend: FluxMailBackend, messages: list[Any]) -> int:
        if self.loop is None:
            return backend.send_messages(messages)
        return self.loop.run_until_complete(backend.asend_messages(messages))

    def close(self) -> None:
        if self.loop is not None:
            self.loop.run_until_complete(aclose_async_pools())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()


@pytest.fixture(params=["smtplib", "aiosmtplib"])
def driver(request: pytest.FixtureRequest) -> Iterator[Driver]:
    """Each driver of the SMTP dialogue in turn: see :class:`Driver`."""
    sender = Driver(request.param)
    yield sender
    sender.close()


@pytest.fixture
def tls_server(certs: TLSCertificates) -> Iterator[SMTPTestServer]:
    with SMTPTestServer(starttls=True, certs=certs, auth={"mailer": PASSWORD}) as smtp:
        yield smtp


MakeBackend = Callable[..., FluxMailBackend]


@pytest.fixture
def make_backend(server: SMTPTestServer) -> MakeBackend:
    """A FluxMailBackend aimed at ``server`` (or another one), options on top."""

    def make(target: SMTPTestServer | None = None, **options: Any) -> FluxMailBackend:
        target = target or server
        options = {
            "host": target.host,
            "port": target.port,
            "retry_delay": 0.5,
            **options,
        }
        return FluxMailBackend(**options)

    return make


@contextlib.contextmanager
def legacy_settings(**settings: Any) -> Iterator[None]:
    """Override ``EMAIL_*`` settings, quieting Django 6.1's deprecation of them."""
    with warnings.catch_warnings():
        if MAILERS_SUPPORTED:
            from django.utils.deprecation import RemovedInDjango2028Warning

            warnings.simplefilter("ignore", RemovedInDjango2028Warning)
        with override_settings(**settings):
            yield


def default_mailer_settings(backend: str) -> dict[str, Any]:
    """Settings that make ``backend`` the default mailer, for ``override_settings``.

    ``MAILERS`` on Django 6.1 (where ``EMAIL_BACKEND`` warns), ``EMAIL_BACKEND`` before.
    """
    if MAILERS_SUPPORTED:
        return {"MAILERS": {"default": {"BACKEND": backend}}}
    return {"EMAIL_BACKEND": backend}


@contextlib.contextmanager
def mailer_for(
    server: SMTPTestServer | None = None, backend: str = BACKEND, **options: Any
) -> Iterator[None]:
    """Make ``backend`` Django's default mailer, aimed at ``server``, with options.

    On Django 6.1 through ``MAILERS``; before, through ``EMAIL_*`` settings.
    """
    if server is not None:
        options = {"host": server.host, "port": server.port, **options}
    if MAILERS_SUPPORTED:
        mailers = {"default": {"BACKEND": backend, "OPTIONS": options}}
        with override_settings(MAILERS=mailers):
            yield
    else:
        with legacy_settings(EMAIL_BACKEND=backend, **settings_for(options)):
            yield


@pytest.fixture
def use_server(server: SMTPTestServer) -> Iterator[SMTPTestServer]:
    """Make FluxMailBackend Django's default mailer, aimed at ``server``."""
    with mailer_for(server):
        yield server


def djangos_bytes(message: Any, smtputf8: bool = False) -> bytes:
    """What Django's own SMTP backend sends for ``message`` (5.2, 6.0 and 6.1)."""
    if MODERN_EMAIL_API:
        policy = email.policy.SMTPUTF8 if smtputf8 else email.policy.SMTP
        return bytes(message.message(policy=policy).as_bytes())
    return bytes(message.message().as_bytes(linesep="\r\n"))


@pytest.fixture
def log_on() -> Iterator[None]:
    """Turn the delivery log on (the test settings keep it off elsewhere)."""
    with override_settings(HYPERMAIL_LOG_ENABLED=True):
        yield


@pytest.fixture
def keep_full() -> Iterator[None]:
    """The delivery log on, keeping whole messages."""
    with override_settings(HYPERMAIL_LOG_ENABLED=True, HYPERMAIL_LOG_KEEP="full"):
        yield
