"""The delivery log records background delivery, from the task worker's outcome.

Tasks run as a worker would (Django Tasks' Immediate and Dummy backends), the
mail goes to a real ``SMTPTestServer``; one record per message, updated as
re-enqueued recipients are delivered.
"""

from __future__ import annotations

import pytest
from django.core.mail import EmailMessage

from hypermail_django.background import enqueue_messages, send_mail_later
from hypermail_django.background.framework import task_backends
from hypermail_django.log.models import Delivery

from ..background.test_background import dummy, immediate, run  # noqa: F401
from ..log_helpers import outcomes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.usefixtures("immediate")
def test_a_background_send_is_recorded(use_server, keep_full):
    enqueued = send_mail_later(
        "Later", "x", "shop@example.com", ["a@example.com"], html_message="<p>x</p>"
    )
    (delivery,) = Delivery.objects.all()
    assert delivery.message_id == enqueued.message_ids[0]
    assert (delivery.via, delivery.status, delivery.subject) == (
        "background",
        "sent",
        "Later",
    )
    assert outcomes(delivery) == {"a@example.com": ("to", "sent", 250)}
    kept = delivery.message_bytes()
    assert kept is not None
    assert kept.rstrip() == use_server.messages[0].data.rstrip()


@pytest.mark.usefixtures("immediate")
def test_a_refused_background_send_is_recorded_as_failed(use_server, log_on):
    use_server.fail("RCPT", "550 5.1.1 No such user")
    message = EmailMessage("Nope", "x", "shop@example.com", ["ghost@example.com"])
    message.bcc = ["hidden@example.com"]
    enqueue_messages([message])
    (delivery,) = Delivery.objects.all()
    assert delivery.status == "failed"
    assert delivery.error_code == "recipients_refused"
    assert outcomes(delivery) == {
        "ghost@example.com": ("to", "refused", 550),
        "hidden@example.com": ("bcc", "refused", 550),
    }


@pytest.mark.usefixtures("dummy")
def test_requeued_recipients_update_the_same_record(use_server, log_on):
    use_server.fail("RCPT", "451 4.2.2 Mailbox full", match="late@example.com")
    message = EmailMessage(
        "Twice", "x", "shop@example.com", ["now@example.com", "late@example.com"]
    )
    (first,) = enqueue_messages([message])
    run(first)
    (delivery,) = Delivery.objects.all()
    assert delivery.status == "partial"
    assert outcomes(delivery)["late@example.com"][1] == "deferred"

    use_server.clear_faults()
    (_, retry) = task_backends["default"].results
    run(retry)
    (delivery,) = Delivery.objects.all()
    assert delivery.status == "sent"
    assert outcomes(delivery) == {
        "now@example.com": ("to", "sent", 250),
        "late@example.com": ("to", "sent", 250),
    }
