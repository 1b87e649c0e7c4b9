"""The test project and the demo, run as a user would: in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys

from ..paths import ROOT


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_testproject_takes_its_mailer_from_fluxmail_environment(server):
    result = _run(
        "manage.py",
        "sendtestemail",
        "ops@example.com",
        env={
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "FLUXMAIL_HOST": server.host,
            "FLUXMAIL_PORT": str(server.port),
        },
    )
    assert result.returncode == 0, result.stderr
    (received,) = server.wait_for_messages(1)
    assert received.rcpt_tos == ["ops@example.com"]
    assert received.mail_from == "demo@example.com"


def test_demo_shows_delivery_bcc_reuse_and_a_survived_451():
    result = _run("-m", "testproject.demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "received 'Quarterly report'" in out
    assert "archive@example.com" in out
    assert "Bcc header in the delivered bytes? False" in out
    assert "new connections for the batch: 0" in out
    assert "attempts: 2, status: sent" in out
    assert "delivered over 1 SMTP connection(s)" in out
    tree = "multipart/alternative[text/plain, multipart/related[text/html, image/png]]"
    assert f"MIME: {tree}" in out
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in out
    assert "healthy in" in out
    assert "messages sent by the check: 0" in out
    assert "2 messages, tokens fetched: 1" in out
    assert "token revoked: refused once, 1 new token (2 in all)" in out
    assert "AUTH mechanisms used: XOAUTH2" in out
