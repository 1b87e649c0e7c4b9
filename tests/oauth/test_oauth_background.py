"""Background delivery with OAuth2: a provider that is down defers the task,
which is requeued and delivered once the provider is back; no secret in the
task payload."""

from __future__ import annotations

import json

import pytest
from django.core.mail import EmailMessage

from hypermail_django.background import enqueue_messages

from ..background.test_background import dummy, requeue_settings, run
from ..conftest import mailer_for
from ..oauth_fixtures import (
    CLIENT_SECRET,
    MAILBOX,
    REFRESH,
    fresh_tokens,
    idp,
    oauth_smtp,
    refresh_provider,
)

__all__ = [
    "dummy",
    "fresh_tokens",
    "idp",
    "oauth_smtp",
    "refresh_provider",
    "requeue_settings",
]


@pytest.mark.parametrize("oauth_smtp", ["microsoft"], indirect=True)
def test_provider_down_requeues_then_delivers(
    oauth_smtp, idp, refresh_provider, dummy, requeue_settings
):
    options = {
        "use_tls": True,
        "username": MAILBOX,
        "auth_mechanism": "xoauth2",
        "token_provider": refresh_provider,
    }
    idp.fail(503, times=None)
    with mailer_for(oauth_smtp, **options):
        message = EmailMessage("S", "B", MAILBOX, ["a@example.com"])
        (result,) = enqueue_messages([message])
        outcome = run(result)
        assert outcome["requeued_as"]
        assert outcome["deferred"] == ["a@example.com"]
        assert oauth_smtp.messages == []
        idp.clear_faults()
        requeued = dummy.results[-1]
        payloads = json.dumps([r.kwargs for r in dummy.results], default=str)
        run(requeued)
    assert [m.rcpt_tos for m in oauth_smtp.messages] == [["a@example.com"]]
    for secret in (CLIENT_SECRET, REFRESH, *idp.tokens):
        assert secret not in payloads
