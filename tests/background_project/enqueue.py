"""Enqueue N test messages in one transaction; print their Message-IDs as JSON.

``python -m tests.background_project.enqueue N`` with the project's settings.
The tasks are written inside the transaction (``on_commit=False``): with
django-tasks-db on the same database, the messages and whatever else the
transaction writes commit together, and one commit is quicker than N.
"""

import json
import sys

import django


def main(count: int) -> None:
    django.setup()
    from django.core.mail import EmailMessage
    from django.db import transaction

    from hypermail_django.background import enqueue_messages

    messages = [
        EmailMessage(f"Crash test {n}", f"Message {n}.", to=[f"user{n}@example.com"])
        for n in range(count)
    ]
    with transaction.atomic():
        enqueued = enqueue_messages(messages, on_commit=False)
    print(json.dumps(enqueued.message_ids))


if __name__ == "__main__":
    main(int(sys.argv[1]))
