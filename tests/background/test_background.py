"""Background delivery: enqueue in the request, deliver from a Django Tasks worker.

Tasks run on the framework's ImmediateBackend (run at once, in this process)
or DummyBackend (kept; a test runs them one by one, as a worker would), and
deliver to a real SMTP server. The durability test with a real worker process
is in ``test_background_crash.py``.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from hypermail_django import signals
from hypermail_django.background import (
    TASK_PATH,
    aenqueue_messages,
    enqueue_messages,
    send_mail_later,
)
from hypermail_django.background.framework import MODULE, TaskContext, task_backends
from hypermail_django.background.payload import InvalidPayload, read_payload
from hypermail_django.compat import MAILERS_SUPPORTED
from hypermail_django.exceptions import (
    CancelSend,
    ConfigurationError,
    DeliveryUncertain,
    InvalidEmail,
    RecipientsRefused,
)
from hypermail_django.testing import SMTPTestServer

from ..conftest import BACKEND, PASSWORD, legacy_settings, requires_mailers

IMMEDIATE = f"{MODULE}.backends.immediate.ImmediateBackend"
DUMMY = f"{MODULE}.backends.dummy.DummyBackend"


def _message(*to: str, subject: str = "Order shipped") -> EmailMessage:
    return EmailMessage(subject, "Your parcel is on its way.", "shop@example.com", to)


@pytest.fixture
def immediate() -> Iterator[None]:
    # On Django 6.x a failed task is logged at ERROR under "django", whose
    # default handler mails the ADMINS -- through the very server a test has
    # made refuse everything (and on 6.1 with MAILERS, raising). No ADMINS.
    with override_settings(TASKS={"default": {"BACKEND": IMMEDIATE}}, ADMINS=[]):
        yield


@pytest.fixture
def dummy() -> Iterator[Any]:
    """A task backend that keeps tasks; ``run(result)`` plays the worker."""
    with override_settings(TASKS={"default": {"BACKEND": DUMMY}}):
        yield task_backends["default"]


def run(result: Any) -> Any:
    """Run one kept task as a worker would, with its context."""
    return result.task.call(
        TaskContext(task_result=result), *result.args, **result.kwargs
    )


@pytest.fixture
def outcomes() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    receivers = {}
    for name in ("background_sent", "background_send_failed"):

        def record(sender: Any, _name: str = name, **kwargs: Any) -> None:
            seen.append((_name, kwargs))

        receivers[name] = record
        getattr(signals, name).connect(record)
    yield seen
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


# -- delivery ---------------------------------------------------------------


def test_send_mail_later_delivers_through_the_task_worker(use_server, immediate):
    enqueued = send_mail_later(
        "Welcome",
        "Hello!",
        "shop@example.com",
        ["alice@example.com"],
        html_message="<p>Hello!</p>",
    )
    (result,) = enqueued
    assert result.status == "SUCCESSFUL", result.errors
    (received,) = use_server.messages
    assert received.rcpt_tos == ["alice@example.com"]
    assert received.message()["Message-ID"] == enqueued.message_ids[0]
    assert result.return_value["sent"] == ["alice@example.com"]
    assert result.return_value["message_id"] == enqueued.message_ids[0]


def test_one_task_per_message_and_bcc_is_delivered(use_server, dummy):
    first = _message("a@example.com")
    first.bcc = ["audit@example.com"]
    enqueued = enqueue_messages([first, _message("b@example.com")])
    assert len(enqueued) == len(dummy.results) == 2
    for result in enqueued:
        run(result)
    rcpts = sorted(tuple(m.rcpt_tos) for m in use_server.messages)
    assert rcpts == [("a@example.com", "audit@example.com"), ("b@example.com",)]
    assert b"audit@example.com" not in use_server.messages[0].data


def test_the_worker_uses_the_mailers_retry_policy(server, dummy, waits):
    with _mailer(server, max_retries=2):
        server.fail("RCPT", "451 4.3.0 Try again later", times=1)
        (result,) = enqueue_messages([_message("a@example.com")])
        outcome = run(result)
    assert outcome["attempts"] == 2
    assert outcome["requeued_as"] is None
    assert len(waits) == 1  # one wait of the policy, recorded instead of slept
    assert len(server.messages) == 1


def test_queue_priority_and_run_after_pass_on_and_requeues_keep_them(use_server):
    tasks = {"default": {"BACKEND": DUMMY, "QUEUES": ["default", "email"]}}
    with override_settings(TASKS=tasks, HYPERMAIL_BACKGROUND_QUEUE="email"):
        later = timezone.now() + timedelta(hours=1)
        (result,) = enqueue_messages(
            [_message("a@example.com")], priority=10, run_after=later
        )
        assert result.task.queue_name == "email"
        assert (result.task.priority, result.task.run_after) == (10, later)
        use_server.fail("RCPT", "451 4.3.0 Try again later")
        run(result)
        requeued = task_backends["default"].results[-1]
        assert (requeued.task.queue_name, requeued.task.priority) == ("email", 10)
        assert requeued.task.run_after < later


@requires_mailers
def test_using_picks_the_mailers_alias(server, dummy):
    with SMTPTestServer() as bulk:
        mailers = {
            "default": {"BACKEND": BACKEND, "OPTIONS": _options(server)},
            "bulk": {"BACKEND": BACKEND, "OPTIONS": _options(bulk)},
        }
        with override_settings(MAILERS=mailers):
            (result,) = enqueue_messages([_message("a@example.com")], using="bulk")
            assert result.kwargs["payload"]["using"] == "bulk"
            run(result)
        assert len(bulk.messages) == 1
    assert server.messages == []


# -- task arguments -----------------------------------------------------------


def test_task_arguments_are_json_with_the_message_bytes_and_no_credentials(
    server, dummy
):
    with _mailer(server, username="mailer", password=PASSWORD):
        enqueue_messages([_message("a@example.com")])
    (stored,) = dummy.results
    assert stored.task.module_path == TASK_PATH
    assert stored.args == []
    payload = stored.kwargs["payload"]
    assert json.loads(json.dumps(stored.kwargs)) == stored.kwargs
    assert payload["format"] == 1
    assert payload["recipients"] == ["a@example.com"]
    assert payload["mail_from"] == "shop@example.com"
    assert payload["requeues"] == 0
    data = base64.b64decode(payload["data"])
    assert b"Your parcel is on its way." in data
    assert payload["message_id"].encode() in data
    # The mailer is found by its alias in the worker: no credentials travel.
    assert set(payload) == {
        "format",
        "using",
        "message_id",
        "mail_from",
        "recipients",
        "data",
        "smtputf8",
        "enqueued_at",
        "requeues",
    }
    assert PASSWORD not in json.dumps(stored.kwargs)


def test_a_payload_of_an_unknown_format_is_refused():
    with pytest.raises(InvalidPayload) as caught:
        read_payload({"format": 99})
    assert caught.value.code == "invalid_task_payload"
    assert "format 99" in str(caught.value)
    with pytest.raises(InvalidPayload, match="damaged"):
        read_payload({"format": 1, "data": "not base64!"})


# -- in the request -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_tasks_are_enqueued_when_the_transaction_commits(use_server, dummy):
    with transaction.atomic():
        enqueued = enqueue_messages([_message("a@example.com")])
        assert dummy.results == []
        assert list(enqueued) == []
        assert len(enqueued.message_ids) == 1
    assert len(dummy.results) == 1
    assert [r.id for r in enqueued] == [dummy.results[0].id]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_enqueues_nothing(use_server, dummy):
    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic():
        enqueued = enqueue_messages([_message("a@example.com")])
        raise Rollback
    assert dummy.results == []
    assert list(enqueued) == []


@pytest.mark.django_db(transaction=True)
def test_on_commit_false_enqueues_inside_the_transaction(use_server, dummy):
    with transaction.atomic():
        enqueue_messages([_message("a@example.com")], on_commit=False)
        assert len(dummy.results) == 1


def test_a_pre_send_cancel_at_enqueue_time_enqueues_nothing(use_server, dummy):
    def cancel(sender: Any, message: EmailMessage, **kwargs: Any) -> None:
        if message.to == ["blocked@example.com"]:
            raise CancelSend

    signals.pre_send.connect(cancel)
    try:
        enqueued = enqueue_messages(
            [_message("blocked@example.com"), _message("ok@example.com")]
        )
    finally:
        signals.pre_send.disconnect(cancel)
    assert len(enqueued) == len(dummy.results) == 1
    assert dummy.results[0].kwargs["payload"]["recipients"] == ["ok@example.com"]


def test_an_invalid_address_fails_at_enqueue_with_nothing_enqueued(use_server, dummy):
    with pytest.raises(InvalidEmail) as caught:
        enqueue_messages([_message("ok@example.com"), _message("bad\n@example.com")])
    assert caught.value.code == "invalid_email"
    assert dummy.results == []


def test_an_unknown_task_backend_fails_in_the_request(use_server, dummy):
    with pytest.raises(ConfigurationError) as caught:
        enqueue_messages([_message("a@example.com")], backend="nope")
    assert caught.value.code == "invalid_task_backend"
    assert "HYPERMAIL_BACKGROUND_BACKEND" in str(caught.value)
    with (
        override_settings(HYPERMAIL_BACKGROUND_QUEUE="mail"),
        pytest.raises(ConfigurationError, match="'mail'"),
    ):
        enqueue_messages([_message("a@example.com")])
    assert dummy.results == []


def test_a_bad_setting_is_named(use_server, dummy):
    with (
        override_settings(HYPERMAIL_BACKGROUND_REQUEUE_DELAY="soon"),
        pytest.raises(ConfigurationError, match="HYPERMAIL_BACKGROUND_REQUEUE_DELAY"),
    ):
        enqueue_messages([_message("a@example.com")])


@pytest.mark.skipif(MAILERS_SUPPORTED, reason="without MAILERS only")
def test_a_mailer_alias_without_mailers_is_refused(use_server, dummy):
    with pytest.raises(ConfigurationError) as caught:
        enqueue_messages([_message("a@example.com")], using="bulk")
    assert caught.value.code == "unknown_mailer"


@pytest.mark.asyncio
@pytest.mark.usefixtures("close_async_pools")
async def test_aenqueue_messages(use_server, immediate):
    (result,) = await aenqueue_messages([_message("a@example.com")])
    assert result.status == "SUCCESSFUL", result.errors
    assert use_server.messages[0].rcpt_tos == ["a@example.com"]


# -- failures in the worker -----------------------------------------------------


@pytest.fixture
def requeue_settings() -> Iterator[None]:
    with override_settings(
        HYPERMAIL_BACKGROUND_REQUEUE_DELAY=60,
        HYPERMAIL_BACKGROUND_REQUEUE_MAX_DELAY=200,
        HYPERMAIL_BACKGROUND_MAX_REQUEUES=3,
    ):
        yield


def test_an_uncertain_delivery_is_never_requeued(use_server, dummy, outcomes):
    """The content went out and no reply came: the message may be queued, so
    the task fails at most once instead of re-enqueueing a possible copy."""
    use_server.drop("DATA_END", times=1)
    (result,) = enqueue_messages([_message("a@example.com")])
    with pytest.raises(DeliveryUncertain) as caught:
        run(result)
    assert len(dummy.results) == 1  # nothing re-enqueued
    assert caught.value.code == "delivery_uncertain"
    [(name, failed)] = outcomes
    assert name == "background_send_failed"
    assert failed["status"].uncertain == ["a@example.com"]
    assert sum(1 for _, verb, _ in use_server.commands if verb == "DATA") == 1


def test_a_transient_failure_requeues_with_a_growing_delay_then_gives_up(
    use_server, dummy, requeue_settings, outcomes, caplog
):
    use_server.fail("RCPT", "451 4.3.0 Try again later")
    (result,) = enqueue_messages([_message("a@example.com")])
    message_id = result.kwargs["payload"]["message_id"]
    delays = []
    for _ in range(3):
        before = timezone.now()
        outcome = run(result)
        after = timezone.now()
        result = dummy.results[-1]
        assert str(result.id) == outcome["requeued_as"]
        assert result.kwargs["payload"]["requeues"] == len(delays) + 1
        # The new task's run_after is "now + delay", now being during the run.
        delay = (result.task.run_after - before).total_seconds()
        assert delay >= (result.task.run_after - after).total_seconds()
        delays.append(round(delay))
    assert delays == [60, 120, 200]  # doubling, capped by REQUEUE_MAX_DELAY

    with (
        caplog.at_level(logging.ERROR, logger="hypermail_django.background"),
        pytest.raises(RecipientsRefused) as caught,
    ):
        run(result)  # the fourth run: MAX_REQUEUES (3) is spent
    assert len(dummy.results) == 4
    assert caught.value.transient
    [(name, failed)] = outcomes
    assert name == "background_send_failed"
    assert failed["message_id"] == message_id
    assert failed["error"] is caught.value
    assert failed["status"].deferred == ["a@example.com"]
    assert "HYPERMAIL_BACKGROUND_MAX_REQUEUES" in caplog.text
    assert message_id in caplog.text
    assert use_server.messages == []


def test_max_age_stops_requeueing(use_server, dummy, outcomes):
    use_server.fail("RCPT", "451 4.3.0 Try again later")
    with override_settings(
        HYPERMAIL_BACKGROUND_REQUEUE_DELAY=60, HYPERMAIL_BACKGROUND_MAX_AGE=30
    ):
        (result,) = enqueue_messages([_message("a@example.com")])
        with pytest.raises(RecipientsRefused):
            run(result)
    assert len(dummy.results) == 1
    assert [name for name, _ in outcomes] == ["background_send_failed"]


def test_only_deferred_recipients_are_requeued(use_server, dummy, outcomes):
    use_server.fail("RCPT", "451 4.2.2 Mailbox full", match="late@example.com")
    (result,) = enqueue_messages([_message("now@example.com", "late@example.com")])
    outcome = run(result)
    assert outcome["sent"] == ["now@example.com"]
    assert outcome["deferred"] == ["late@example.com"]
    [(name, sent)] = outcomes
    assert name == "background_sent"
    assert sent["status"].status == "partial"

    use_server.clear_faults()
    (_, retry) = dummy.results
    assert retry.kwargs["payload"]["recipients"] == ["late@example.com"]
    run(retry)
    assert [m.rcpt_tos for m in use_server.messages] == [
        ["now@example.com"],
        ["late@example.com"],
    ]
    # The same message, twice the same Message-ID: one email, two deliveries.
    first, second = (m.message()["Message-ID"] for m in use_server.messages)
    assert first == second


def test_a_permanent_failure_is_logged_and_signalled_with_the_message_id(
    use_server, immediate, outcomes, caplog
):
    use_server.fail("RCPT", "550 5.1.1 No such user")
    with caplog.at_level(logging.ERROR, logger="hypermail_django.background"):
        enqueued = enqueue_messages([_message("ghost@example.com")])
    (result,) = enqueued
    assert result.status == "FAILED"
    assert result.errors[0].exception_class_path.endswith("RecipientsRefused")
    [(name, failed)] = outcomes
    assert name == "background_send_failed"
    assert failed["message_id"] == enqueued.message_ids[0]
    assert failed["error"].code == "recipients_refused"
    assert failed["status"].refused == ["ghost@example.com"]
    assert failed["alias"] is None
    (record,) = [
        r
        for r in caplog.records
        if r.name == "hypermail_django.background" and r.levelno == logging.ERROR
    ]
    assert enqueued.message_ids[0] in record.getMessage()
    assert "550 5.1.1 No such user" in record.getMessage()
    assert "Your parcel" not in caplog.text  # never the body


def test_a_backend_that_cannot_defer_gives_up_after_the_retries(
    use_server, immediate, outcomes, caplog
):
    use_server.fail("RCPT", "451 4.3.0 Try again later")
    with caplog.at_level(logging.ERROR, logger="hypermail_django.background"):
        (result,) = enqueue_messages([_message("a@example.com")])
    assert result.status == "FAILED"
    assert "cannot schedule a task for later" in caplog.text
    assert [name for name, _ in outcomes] == ["background_send_failed"]


# -- other mailers (Django's test runner swaps in locmem) ----------------------


def test_under_the_test_runner_mail_lands_in_the_outbox(immediate):
    mail.outbox.clear()
    message = EmailMultiAlternatives(
        "Receipt",
        "Thanks for your order.",
        "Shop <shop@example.com>",
        ["Alice <alice@example.com>"],
        bcc=["audit@example.com"],
        reply_to=["help@example.com"],
        headers={"X-Order": "42"},
    )
    message.attach_alternative("<p>Thanks for your order.</p>", "text/html")
    message.attach("receipt.txt", "Total: 10 EUR", "text/plain")
    enqueued = enqueue_messages([message])
    assert enqueued[0].status == "SUCCESSFUL", enqueued[0].errors
    (sent,) = mail.outbox
    assert sent.subject == "Receipt"
    assert sent.body.strip() == "Thanks for your order."
    assert sent.from_email == "Shop <shop@example.com>"
    assert sent.to == ["Alice <alice@example.com>"]
    assert sent.bcc == ["audit@example.com"]
    assert sent.reply_to == ["help@example.com"]
    assert sent.extra_headers["X-Order"] == "42"
    assert sent.extra_headers["Message-ID"] == enqueued.message_ids[0]
    assert [a[1] for a in sent.alternatives] == ["text/html"]
    assert [(a[0], a[1].strip()) for a in sent.attachments] == [
        ("receipt.txt", "Total: 10 EUR")
    ]
    assert sent.recipients() == ["alice@example.com", "audit@example.com"]


@pytest.mark.django_db
def test_a_users_test_sees_background_mail_in_the_outbox(
    immediate, django_capture_on_commit_callbacks
):
    """What docs/background-delivery.md tells users to write."""
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        send_mail_later("Hi", "Welcome!", None, ["alice@example.com"])
        assert mail.outbox == []  # the test's transaction has not committed
    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert mail.outbox[0].from_email == "noreply@example.com"  # DEFAULT_FROM_EMAIL


def test_a_memory_backend_runs_pre_send_once_in_the_worker(server, immediate, outcomes):
    from hypermail_django.testing.outbox import clear_outbox, get_outbox

    seen = []

    def pre_send(sender: Any, message: EmailMessage, **kwargs: Any) -> None:
        seen.append(message.to)
        if message.to == ["blocked@example.com"]:
            raise CancelSend

    clear_outbox()
    signals.pre_send.connect(pre_send)
    try:
        with _mailer(server, backend="hypermail_django.backends.MemoryBackend"):
            kept, cancelled = enqueue_messages(
                [_message("ok@example.com"), _message("blocked@example.com")]
            )
    finally:
        signals.pre_send.disconnect(pre_send)
    assert seen == [["ok@example.com"], ["blocked@example.com"]]
    assert kept.status == cancelled.status == "SUCCESSFUL"
    assert cancelled.return_value["cancelled"] is True
    assert [entry.to for entry in get_outbox()] == [["ok@example.com"]]
    assert [name for name, _ in outcomes] == ["background_sent"]
    assert server.messages == []


# -- helpers -----------------------------------------------------------------


def _options(server: SMTPTestServer, **options: Any) -> dict[str, Any]:
    return {"host": server.host, "port": server.port, **options}


def _mailer(server: SMTPTestServer, backend: str = BACKEND, **options: Any) -> Any:
    """Make ``backend`` (FluxMailBackend) the default mailer, aimed at ``server``."""
    if MAILERS_SUPPORTED:
        mailers = {
            "default": {"BACKEND": backend, "OPTIONS": _options(server, **options)}
        }
        return override_settings(MAILERS=mailers)
    names = {
        "username": "EMAIL_HOST_USER",
        "password": "EMAIL_HOST_PASSWORD",
        "max_retries": "EMAIL_FLUXMAIL_MAX_RETRIES",
    }
    extra = {names[name]: value for name, value in options.items()}
    return legacy_settings(
        EMAIL_BACKEND=backend, EMAIL_HOST=server.host, EMAIL_PORT=server.port, **extra
    )
