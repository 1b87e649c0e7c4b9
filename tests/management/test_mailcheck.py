"""``manage.py mailcheck``: output, JSON and exit codes against real servers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from hypermail_django.testing import SMTPTestServer

from ..conftest import BACKEND, PASSWORD, mailer_for, requires_mailers
from ..mailer_config import (
    LOCMEM,
    aimed_at,
    free_port,
    short_lived_certs,
)
from ..paths import ROOT

#: Every key of a probed mailer's JSON object (docs/health-checks.md).
PROBE_KEYS = {
    "alias",
    "backend",
    "status",
    "ok",
    "relay",
    "port",
    "latency_ms",
    "security",
    "username",
    "timeout",
    "greeting",
    "steps",
    "capabilities",
    "tls",
    "warnings",
    "error",
    "auth",
    "fix",
}


def mailcheck(*args: str) -> tuple[int, str]:
    """Run the command; return its exit status and standard output."""
    out = io.StringIO()
    try:
        call_command("mailcheck", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


# -- healthy ---------------------------------------------------------------------


def test_healthy_server_human_output(server):
    with mailer_for(**aimed_at(server)):
        status, out = mailcheck()
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == (
        f"Mailer 'default' ({BACKEND}): {server.host}:{server.port}, no TLS, "
        "no AUTH, deadline 30 s"
    )
    assert [line.split()[0] for line in lines[1:5]] == [
        "connect",
        "ehlo",
        "noop",
        "quit",
    ]
    assert " ms  221 " in lines[4]
    assert "  greeting      220 localhost" in out
    assert "  capabilities  SIZE 33554432, 8BITMIME, SMTPUTF8" in out
    assert "healthy in" in lines[-1]
    assert server.messages == []
    assert "MAIL" not in [verb for _, verb, _ in server.commands]


def test_healthy_server_json_schema(server):
    with mailer_for(**aimed_at(server)):
        status, out = mailcheck("--json")
    assert status == 0
    (report,) = json_lines(out)
    assert set(report) == PROBE_KEYS
    assert report["status"] == "healthy"
    assert report["ok"] is True
    assert report["backend"] == BACKEND
    for step in report["steps"]:
        assert set(step) == {"step", "ok", "latency_ms", "reply"}
    assert set(report["capabilities"]) == {
        "size",
        "pipelining",
        "chunking",
        "smtputf8",
        "8bitmime",
        "starttls",
        "auth",
        "extensions",
    }


def test_starttls_auth_output_shows_tls_and_never_the_password(trust_ca, tls_server):
    options = aimed_at(tls_server, use_tls=True, username="mailer", password=PASSWORD)
    with mailer_for(**options):
        status, human = mailcheck()
        _, machine = mailcheck("--json")
    assert status == 0
    assert "STARTTLS, user 'mailer'" in human
    assert "  tls           TLSv1." in human
    assert "  certificate   127.0.0.1, issued by" in human
    (report,) = json_lines(machine)
    assert set(report["tls"]) == {
        "version",
        "cipher",
        "bits",
        "cert_subject",
        "cert_issuer",
        "cert_not_after",
        "cert_days_left",
    }
    assert report["tls"]["cert_days_left"] > 14
    assert PASSWORD not in human + machine


def test_implicit_tls(trust_ca, certs):
    with (
        SMTPTestServer(implicit_tls=True, certs=certs) as tls,
        mailer_for(**aimed_at(tls, use_ssl=True)),
    ):
        status, out = mailcheck("--json")
    assert status == 0
    (report,) = json_lines(out)
    assert report["security"] == "ssl"
    assert report["tls"]["version"].startswith("TLSv1.")


def test_certificate_expiring_within_14_days_warns_and_stays_healthy(monkeypatch):
    certs = short_lived_certs(days=3)
    monkeypatch.setenv("SSL_CERT_FILE", certs.ca_file)
    with (
        SMTPTestServer(starttls=True, certs=certs) as tls,
        mailer_for(**aimed_at(tls, use_tls=True)),
    ):
        status, human = mailcheck()
        _, machine = mailcheck("--json")
    assert status == 0
    assert "(3 days)" in human
    assert "  warning: The server certificate expires in 3 day(s)" in human
    (report,) = json_lines(machine)
    assert report["tls"]["cert_days_left"] == 3
    assert report["status"] == "healthy"
    assert report["warnings"][0].startswith("The server certificate expires in 3")


# -- unhealthy: exit status 1 ----------------------------------------------------


def test_dead_server_exits_1():
    with mailer_for(host="127.0.0.1", port=free_port()):
        status, out = mailcheck("--json")
    assert status == 1
    (report,) = json_lines(out)
    assert report["status"] == "unhealthy"
    assert report["ok"] is False
    assert report["error"]["step"] == "connect"
    assert report["error"]["code"] == "connection_failed"
    assert report["error"]["transient"] is True


def test_hung_server_exits_1_within_the_timeout(server):
    server.hang("EHLO")
    with mailer_for(**aimed_at(server)):
        status, out = mailcheck("--json", "--timeout", "0.3")
    assert status == 1
    (report,) = json_lines(out)
    assert report["timeout"] == 0.3
    assert report["error"]["code"] == "timeout"
    assert report["error"]["step"] == "ehlo"
    assert [step["ok"] for step in report["steps"]] == [True, False]


def test_auth_failure_exits_1_and_shows_no_password(trust_ca, tls_server):
    wrong = "wrong-Pa55word!"
    options = aimed_at(tls_server, use_tls=True, username="mailer", password=wrong)
    with mailer_for(**options):
        status, human = mailcheck()
        _, machine = mailcheck("--json")
    assert status == 1
    assert "FAILED 535 5.7.8" in human
    assert "[auth_failed]" in human
    assert json_lines(machine)[0]["error"]["code"] == "auth_failed"
    assert wrong not in human + machine
    assert PASSWORD not in human + machine


# -- misconfigured: exit status 2 ------------------------------------------------


def test_invalid_option_exits_2_without_connecting(server):
    with mailer_for(**aimed_at(server, max_retries=-1)):
        status, out = mailcheck("--json")
    assert status == 2
    (report,) = json_lines(out)
    assert report == {
        "alias": "default",
        "backend": BACKEND,
        "status": "misconfigured",
        "ok": False,
        "error": {
            "step": None,
            "code": "invalid_config",
            "message": report["error"]["message"],
        },
    }
    assert "max_retries" in report["error"]["message"].lower()
    assert server.sessions == 0


def test_unknown_alias_exits_2():
    status, out = mailcheck("--using", "nope")
    assert status == 2
    assert "misconfigured: Unknown mailer 'nope'" in out
    _, machine = mailcheck("--using", "nope", "--json")
    (report,) = json_lines(machine)
    assert (report["alias"], report["backend"]) == ("nope", None)
    assert report["error"]["code"] == "unknown_mailer"


def test_non_fluxmail_mailer_exits_2():
    status, out = mailcheck("--json")  # Django's test runner: locmem
    assert status == 2
    (report,) = json_lines(out)
    assert report["backend"] == LOCMEM
    assert report["error"]["code"] == "unsupported_backend"


def test_timeout_must_be_positive(server):
    with mailer_for(**aimed_at(server)), pytest.raises(CommandError) as caught:
        call_command("mailcheck", "--timeout", "0", stdout=io.StringIO())
    assert caught.value.returncode == 2


def test_using_and_all_are_exclusive():
    with pytest.raises(CommandError, match="not allowed with argument"):
        call_command("mailcheck", "--using", "default", "--all")


# -- --all -----------------------------------------------------------------------


def test_all_on_a_single_mailer_project(server):
    with mailer_for(**aimed_at(server)):
        status, out = mailcheck("--all", "--json")
    assert status == 0
    assert [r["alias"] for r in json_lines(out)] == ["default"]


def test_all_with_only_development_mailers_exits_2():
    status, out = mailcheck("--all", "--json")  # Django's test runner: locmem
    assert status == 2
    assert json_lines(out)[0]["status"] == "skipped"
    assert json_lines(out)[0]["ok"] is None


@requires_mailers
def test_all_checks_every_alias_and_exits_with_the_worst(server):
    mailers = {
        "zeta": {"BACKEND": BACKEND, "OPTIONS": {"host": "127.0.0.1", "port": 1}},
        "default": {"BACKEND": BACKEND, "OPTIONS": aimed_at(server)},
        "outbox": {"BACKEND": LOCMEM},
        "broken": {"BACKEND": BACKEND, "OPTIONS": {"max_retries": -1}},
    }
    with override_settings(MAILERS=mailers):
        status, out = mailcheck("--all", "--json")
        only_good, _ = mailcheck("--using", "default")
        dead, _ = mailcheck("--using", "zeta")
        other, _ = mailcheck("--using", "outbox")
    reports = {r["alias"]: r["status"] for r in json_lines(out)}
    assert list(reports) == ["default", "broken", "outbox", "zeta"]
    assert reports == {
        "default": "healthy",
        "broken": "misconfigured",
        "outbox": "skipped",
        "zeta": "unhealthy",
    }
    assert (status, only_good, dead, other) == (2, 0, 1, 2)


# -- a real process: the exit status a deploy pipeline sees -----------------------


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_exit_status_of_a_real_process(server):
    healthy = {"FLUXMAIL_HOST": server.host, "FLUXMAIL_PORT": str(server.port)}
    result = _manage("mailcheck", "--json", env=healthy)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "healthy"

    dead = {"FLUXMAIL_HOST": "127.0.0.1", "FLUXMAIL_PORT": str(free_port())}
    result = _manage("mailcheck", env=dead)
    assert result.returncode == 1
    assert "unhealthy" in result.stderr

    result = _manage("mailcheck", "--using", "default", "--all", env=healthy)
    assert result.returncode == 2
