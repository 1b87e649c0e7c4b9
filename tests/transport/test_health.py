"""test_connection() and the probe under it, against real servers."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from hypermail_django import health
from hypermail_django.exceptions import (
    ConfigurationError,
    FluxMailException,
    SendError,
)
from hypermail_django.testing import SMTPTestServer
from hypermail_django.transport import TransportConfig
from hypermail_django.transport.probe import CERT_WARNING_DAYS, ProbeFailed, probe

from ..conftest import BACKEND, PASSWORD, legacy_settings, mailer_for, requires_mailers
from ..mailer_config import (
    LOCMEM,
    aimed_at,
    free_port,
    short_lived_certs,
)


def verbs(server: SMTPTestServer) -> list[str]:
    return [verb for _, verb, _ in server.commands]


def step_names(report: dict) -> list[str]:
    return [step["step"] for step in report["steps"]]


# -- healthy servers -------------------------------------------------------------


def test_healthy_plain_server_reports_like_fluxmail_and_sends_nothing(server):
    with mailer_for(**aimed_at(server)):
        report = health.test_connection()
    assert report["ok"] is True
    assert (report["relay"], report["port"]) == (server.host, server.port)
    assert isinstance(report["latency_ms"], int)
    assert step_names(report) == ["connect", "ehlo", "noop", "quit"]
    assert all(step["ok"] for step in report["steps"])
    assert report["greeting"].startswith("220 ")
    assert report["capabilities"]["smtputf8"] is True
    assert report["capabilities"]["size"] > 0
    assert report["tls"] is None
    assert report["error"] is None
    assert verbs(server) == ["EHLO", "NOOP", "QUIT"]
    assert server.messages == []
    json.dumps(report)  # JSON-ready as it is


def test_relay_extensions_are_reported():
    relay = SMTPTestServer(pipelining=True, chunking=True)
    with relay, mailer_for(**aimed_at(relay)):
        offered = health.test_connection()["capabilities"]
    with SMTPTestServer() as bare, mailer_for(**aimed_at(bare)):
        plain = health.test_connection()["capabilities"]
    assert (offered["pipelining"], offered["chunking"]) == (True, True)
    assert {"PIPELINING", "CHUNKING"} <= set(offered["extensions"])
    assert (plain["pipelining"], plain["chunking"]) == (False, False)


def test_starttls_and_auth_report_tls_and_certificate(trust_ca, tls_server):
    options = aimed_at(tls_server, use_tls=True, username="mailer", password=PASSWORD)
    with mailer_for(**options):
        report = health.test_connection()
    assert step_names(report) == [
        "connect",
        "ehlo",
        "starttls",
        "ehlo",
        "auth",
        "noop",
        "quit",
    ]
    assert report["security"] == "starttls"
    assert report["username"] == "mailer"
    assert report["capabilities"]["starttls"] is True
    assert "PLAIN" in report["capabilities"]["auth"]
    assert report["tls"]["version"].startswith("TLSv1.")
    assert report["tls"]["cipher"]
    assert report["tls"]["cert_days_left"] > CERT_WARNING_DAYS
    assert report["tls"]["cert_subject"] == "127.0.0.1"
    assert report["warnings"] == []
    assert verbs(tls_server) == ["EHLO", "STARTTLS", "EHLO", "AUTH", "NOOP", "QUIT"]
    assert [tuple(a) for a in tls_server.auth_attempts] == [("mailer", True)]
    assert tls_server.messages == []
    assert PASSWORD not in json.dumps(report)


def test_implicit_tls(trust_ca, certs):
    with SMTPTestServer(implicit_tls=True, certs=certs) as tls:
        with mailer_for(**aimed_at(tls, use_ssl=True)):
            report = health.test_connection()
        assert verbs(tls) == ["EHLO", "NOOP", "QUIT"]
    assert report["security"] == "ssl"
    assert report["tls"]["version"].startswith("TLSv1.")
    assert report["tls"]["cert_not_after"].endswith("Z")


def test_certificate_expiring_soon_is_a_warning_not_a_failure(monkeypatch):
    certs = short_lived_certs(days=5)
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    with SMTPTestServer(starttls=True, certs=certs) as tls:
        result = probe(TransportConfig(host=tls.host, port=tls.port, use_tls=True))
    assert result.ok
    assert result.tls is not None
    assert result.tls.cert_days_left == 5
    assert result.warnings == [
        "The server certificate expires in 5 day(s) (under 14): renew it before "
        "mail stops."
    ]


def test_starttls_offered_but_not_used_is_a_warning(tls_server):
    result = probe(TransportConfig(host=tls_server.host, port=tls_server.port))
    assert result.ok
    assert result.capabilities is not None
    assert result.capabilities.starttls
    assert any("offers STARTTLS but use_tls is off" in w for w in result.warnings)


def test_timeout_argument_and_the_mailers_timeout(server):
    with mailer_for(**aimed_at(server, timeout=7)):
        assert health.test_connection()["timeout"] == 7
        assert health.test_connection(timeout=2.5)["timeout"] == 2.5
        with pytest.raises(ValueError, match="more than 0"):
            health.test_connection(timeout=0)


# -- unhealthy servers -----------------------------------------------------------


def test_wrong_password_raises_connection_failed_with_the_reason(trust_ca, tls_server):
    wrong = "wrong-Pa55word!"
    options = aimed_at(tls_server, use_tls=True, username="mailer", password=wrong)
    with mailer_for(**options), pytest.raises(ProbeFailed) as caught:
        health.test_connection()
    error = caught.value
    assert isinstance(error, FluxMailException)
    assert error.code == "connection_failed"
    assert error.reason == "auth_failed"
    assert error.step == "auth"
    assert error.smtp_code == 535
    assert error.result.to_dict()["steps"][-1] == {
        "step": "auth",
        "ok": False,
        "latency_ms": error.result.steps[-1].latency_ms,
        "reply": "535 5.7.8 Authentication credentials invalid",
    }
    shown = str(error) + repr(error) + json.dumps(error.result.to_dict())
    assert wrong not in shown
    assert "MAIL" not in verbs(tls_server)


def test_dead_port():
    port = free_port()
    with mailer_for(host="127.0.0.1", port=port), pytest.raises(ProbeFailed) as e:
        health.test_connection()
    assert e.value.code == "connection_failed"
    assert e.value.reason == "connection_failed"
    assert e.value.step == "connect"
    assert e.value.transient is True
    assert f"127.0.0.1:{port}" in str(e.value)


@pytest.mark.parametrize("verb", ["CONNECT", "EHLO", "NOOP"])
def test_hung_server_is_reported_within_the_deadline(server, verb):
    server.hang(verb)
    with mailer_for(**aimed_at(server)), pytest.raises(ProbeFailed) as caught:
        health.test_connection(timeout=0.3)
    assert caught.value.reason == "timeout"
    assert caught.value.step == verb.lower()
    assert "0.3 s deadline" in str(caught.value)


def test_server_refusing_service_at_greeting(server):
    server.fail("CONNECT", "554 5.3.2 No service for you")
    result = probe(TransportConfig(host=server.host, port=server.port))
    assert not result.ok
    assert result.failed_step == "connect"
    assert result.greeting == "554 5.3.2 No service for you"
    assert result.error is not None
    assert result.error.smtp_code == 554
    assert result.error.transient is False


def test_untrusted_certificate_fails_tls(tls_server, monkeypatch, tmp_path):
    (tmp_path / "empty.pem").write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "empty.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    config = TransportConfig(host=tls_server.host, port=tls_server.port, use_tls=True)
    result = probe(config)
    assert result.error is not None
    assert (result.failed_step, result.error.code) == ("starttls", "tls_failed")
    assert "failed verification" in result.error.message


def test_use_tls_against_a_server_without_starttls(server):
    config = TransportConfig(host=server.host, port=server.port, use_tls=True)
    result = probe(config)
    assert result.error is not None
    assert (result.failed_step, result.error.code) == ("starttls", "tls_unavailable")
    assert verbs(server) == ["EHLO"]
    # What the server does offer stays visible (here: no STARTTLS at all).
    assert result.capabilities is not None
    assert result.capabilities.starttls is False
    assert result.to_dict()["capabilities"]["starttls"] is False


def test_refused_starttls_fails_the_probe_as_it_fails_sending(make_backend):
    """A 454 reply to STARTTLS: the probe and sending share the classification."""
    with SMTPTestServer(offer_starttls_ext=True) as liar:
        result = probe(TransportConfig(host=liar.host, port=liar.port, use_tls=True))
        with pytest.raises(SendError) as caught:
            make_backend(liar, use_tls=True).open()
    assert result.error is not None
    assert result.failed_step == "starttls"
    assert result.steps[-1].reply == "454 TLS not available"
    sending = caught.value
    assert (result.error.code, result.error.smtp_code, result.error.transient) == (
        sending.code,
        sending.smtp_code,
        sending.transient,
    )
    assert sending.smtp_code == 454


def test_server_dropping_the_connection_is_connection_lost(server):
    server.drop("NOOP")
    result = probe(TransportConfig(host=server.host, port=server.port))
    assert result.error is not None
    assert (result.failed_step, result.error.code) == ("noop", "connection_lost")


# -- which mailer ----------------------------------------------------------------


def test_not_a_fluxmail_backend_is_a_configuration_error():
    # Django's test runner made locmem the mailer.
    with pytest.raises(ConfigurationError) as caught:
        health.test_connection()
    assert caught.value.code == "unsupported_backend"
    assert LOCMEM in str(caught.value)


def test_unknown_alias():
    with pytest.raises(ConfigurationError) as caught:
        health.test_connection("nope")
    assert caught.value.code == "unknown_mailer"


def test_invalid_options_are_a_configuration_error(server):
    with (
        mailer_for(**aimed_at(server, max_retries=-1)),
        pytest.raises(ConfigurationError) as caught,
    ):
        health.test_connection()
    assert caught.value.code == "invalid_config"
    assert server.sessions == 0


def test_legacy_settings_mailer(server):
    with legacy_settings(
        EMAIL_BACKEND=BACKEND, EMAIL_HOST=server.host, EMAIL_PORT=server.port
    ):
        assert health.test_connection()["port"] == server.port


@requires_mailers
def test_mailers_alias(server):
    mailers = {
        "default": {"BACKEND": LOCMEM},
        "relay": {"BACKEND": BACKEND, "OPTIONS": aimed_at(server)},
    }
    with override_settings(MAILERS=mailers):
        assert health.test_connection("relay")["port"] == server.port
        with pytest.raises(ConfigurationError) as caught:
            health.test_connection()
    assert caught.value.code == "unsupported_backend"


def test_test_connection_is_not_collected_by_pytest():
    assert health.test_connection.__test__ is False  # type: ignore[attr-defined]
