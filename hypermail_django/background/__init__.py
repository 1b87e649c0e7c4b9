"""Background delivery on Django's Tasks framework: one task per email.

``enqueue_messages()`` and ``send_mail_later()`` validate and serialize each
message in the request, then enqueue one task per message when the current
transaction commits. A Django Tasks worker -- on this machine or any other --
delivers it through the mailer's transport and retry policy, and re-enqueues
it with a growing delay while the server answers with transient failures. See
``docs/background-delivery.md``.

Importing this package does not touch ``TASKS``; the task module is loaded on
first use.
"""

from .enqueue import (
    EnqueuedMessages,
    aenqueue_messages,
    asend_mail_later,
    enqueue_messages,
    send_mail_later,
)
from .payload import TASK_PATH
from .recovery import StaleTask, requeue_stale_tasks

__all__ = [
    "TASK_PATH",
    "EnqueuedMessages",
    "StaleTask",
    "aenqueue_messages",
    "asend_mail_later",
    "enqueue_messages",
    "requeue_stale_tasks",
    "send_mail_later",
]
