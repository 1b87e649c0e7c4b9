"""``connect_timeout``: connect + TLS handshake + greeting have their own, shorter
bound, so a port that accepts and never greets (an HTTP server) is found out
in seconds, with a message that says so; every later reply keeps ``timeout``."""

from __future__ import annotations

import pytest
from django.core.mail import EmailMessage

from hypermail_django import health
from hypermail_django.backends import FluxMailBackend
from hypermail_django.conf.env import options_from_env
from hypermail_django.conf.mailer_options import resolve_options
from hypermail_django.exceptions import ConfigurationError
from hypermail_django.testing import SMTPTestServer
from hypermail_django.transport import TransportConfig
from hypermail_django.transport.probe import ProbeFailed

from ..conftest import legacy_settings, mailer_for
from ..mailer_config import aimed_at


def _message() -> EmailMessage:
    return EmailMessage("Hi", "Body", "from@example.com", ["to@example.com"])


def _no_greeting(server: SMTPTestServer, seconds: str) -> str:
    where = f"{server.host}:{server.port}"
    return f"No SMTP greeting from {where} within {seconds} s; is this an SMTP port?"


def test_a_silent_port_reports_the_connect_timeout_not_timeout(
    driver, server, make_backend
):
    server.hang("CONNECT")  # accepts the connection, never greets
    backend = make_backend(connect_timeout=0.4, timeout=30)
    with pytest.raises(TimeoutError) as caught:  # what Django's backend raises
        driver.send(backend, [_message()])
    assert str(caught.value) == _no_greeting(server, "0.4")
    assert caught.value.code == "timeout"
    assert server.messages == []


def test_a_smaller_timeout_caps_the_default_connect_timeout(
    driver, server, make_backend
):
    server.hang("CONNECT")
    with pytest.raises(TimeoutError) as caught:
        driver.send(make_backend(timeout=0.3), [_message()])
    assert str(caught.value) == _no_greeting(server, "0.3")


def test_a_slow_greeting_within_the_connect_timeout_still_sends(
    driver, server, make_backend
):
    # Slower than ``timeout``: only the connect timeout bounds the greeting.
    server.delay("CONNECT", 0.6, times=1)
    backend = make_backend(connect_timeout=5, timeout=0.3)
    assert driver.send(backend, [_message()]) == 1
    assert len(server.messages) == 1


def test_after_the_greeting_every_reply_waits_timeout_again(
    driver, server, make_backend
):
    server.hang("EHLO")
    backend = make_backend(connect_timeout=5, timeout=0.3)
    with pytest.raises(TimeoutError) as caught:
        driver.send(backend, [_message()])
    assert "within 0.3 s" in str(caught.value)
    assert "EHLO" in str(caught.value)


def test_implicit_tls_handshake_and_greeting_share_the_connect_timeout(
    driver, trust_ca, certs
):
    with SMTPTestServer(implicit_tls=True, certs=certs) as tls:
        tls.hang("CONNECT")  # the handshake completes, the greeting never comes
        port = tls.port
        backend = FluxMailBackend(
            host="localhost", port=port, use_ssl=True, connect_timeout=0.4
        )
        with pytest.raises(TimeoutError) as caught:
            driver.send(backend, [_message()])
    assert str(caught.value) == (
        f"No SMTP greeting from localhost:{port} within 0.4 s; is this an SMTP port?"
    )


def test_the_health_probe_uses_the_connect_timeout_too(server):
    server.hang("CONNECT")
    options = aimed_at(server, connect_timeout=0.4)
    with mailer_for(**options), pytest.raises(ProbeFailed) as caught:
        health.test_connection(timeout=30)
    assert caught.value.reason == "timeout"
    assert caught.value.step == "connect"
    assert _no_greeting(server, "0.4") in str(caught.value)


def test_the_health_probe_deadline_still_wins_when_shorter(server):
    server.hang("CONNECT")
    with mailer_for(**aimed_at(server)), pytest.raises(ProbeFailed) as caught:
        health.test_connection(timeout=0.3)
    assert "0.3 s deadline" in str(caught.value)


# -- the option, wherever it is set ---------------------------------------------


def test_default_is_ten_seconds_or_timeout_if_smaller():
    assert TransportConfig().greeting_timeout == 10.0
    assert TransportConfig(timeout=4).greeting_timeout == 4.0
    # Set explicitly, it is used as given, even above timeout.
    assert TransportConfig(timeout=4, connect_timeout=8).greeting_timeout == 8.0
    assert resolve_options({"host": "h"})["connect_timeout"] is None


def test_set_as_option_setting_mailers_entry_and_environment():
    assert (
        resolve_options({"host": "h", "connect_timeout": "7"})["connect_timeout"] == 7.0
    )
    with legacy_settings(EMAIL_FLUXMAIL_CONNECT_TIMEOUT="6.5"):
        assert resolve_options({"host": "h"})["connect_timeout"] == 6.5
    assert (
        resolve_options({"host": "h", "connect_timeout": 3}, alias="x")[
            "connect_timeout"
        ]
        == 3.0
    )
    assert options_from_env({"FLUXMAIL_CONNECT_TIMEOUT": "4"}) == {
        "connect_timeout": 4.0
    }


@pytest.mark.parametrize("value", [0, "0", -1, "soon", float("inf")])
def test_a_connect_timeout_that_cannot_work_is_refused(value):
    with pytest.raises(ConfigurationError, match="connect_timeout"):
        resolve_options({"host": "h", "connect_timeout": value})


def test_the_retries_example_shows_a_port_that_never_greets():
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "examples/retries.py"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    step = done.stdout.split("4. A server that never greets", 1)[1].splitlines()
    assert "   raised ConnectTimeout, code 'timeout'" in step
    assert (
        "   No SMTP greeting from host:port within 0.5 s; is this an SMTP port?"
    ) in step
    assert "   status: failed, attempts: 4" in step
    assert "   connections the server saw: 4" in step
