"""Background delivery with django-tasks-db: the SMTP server is down, nothing is lost.

Run it from the repository root:

    .venv/bin/python examples/background_delivery.py

It uses a SQLite file in a temporary directory as the task queue
(django-tasks-db's ``DatabaseBackend``), FluxMailBackend as the mailer, and an
SMTP test server on 127.0.0.1 (``hypermail_django.testing``) that starts
*down*. It shows:

1. a "request" enqueueing three emails inside a transaction: the tasks are
   written when it commits, and no SMTP connection is made;
2. a worker (``manage.py db_worker --batch``, run in this process) failing to
   reach the server: each email is re-enqueued for a little later;
3. the server coming up and the next worker run delivering all three;
4. ``manage.py hypermail_requeue_stale --dry-run``, the recovery step for
   tasks left RUNNING by a killed worker (none here).
"""

from __future__ import annotations

import logging
import socket
import sys
import tempfile
import time
from pathlib import Path

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer

BACKEND = "hypermail_django.backends.FluxMailBackend"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def configure(database: Path, port: int) -> None:
    mailer = {"host": "127.0.0.1", "port": port, "max_retries": 0}
    if django.VERSION >= (6, 1):
        mail_settings = {
            "MAILERS": {"default": {"BACKEND": BACKEND, "OPTIONS": mailer}}
        }
    else:
        mail_settings = {
            "EMAIL_BACKEND": BACKEND,
            "EMAIL_HOST": mailer["host"],
            "EMAIL_PORT": mailer["port"],
            "EMAIL_FLUXMAIL_MAX_RETRIES": mailer["max_retries"],
        }
    settings.configure(
        INSTALLED_APPS=[
            *(["django_tasks"] if django.VERSION < (6, 0) else []),
            "django_tasks_db",
            "hypermail_django",
        ],
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}
        },
        USE_TZ=True,
        TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}},
        DEFAULT_FROM_EMAIL="shop@example.com",
        # Short waits for the demo; the defaults are 60 s, doubling up to 900 s.
        HYPERMAIL_BACKGROUND_REQUEUE_DELAY=1.0,
        HYPERMAIL_BACKGROUND_REQUEUE_MAX_DELAY=5.0,
        **mail_settings,
    )
    django.setup()


def task_counts() -> dict[str, int]:
    from django.db.models import Count
    from django_tasks_db.models import DBTaskResult

    rows = DBTaskResult.objects.values_list("status").annotate(n=Count("id"))
    return dict(sorted(rows))


def run_worker() -> None:
    """What ``manage.py db_worker --batch`` does: run every task that is due."""
    from django.core.management import call_command

    call_command(
        "db_worker", batch=True, startup_delay=False, reload=False, verbosity=0
    )


def main() -> None:
    # hypermail-django logs each re-enqueue (WARNING) and each give-up (ERROR).
    logging.basicConfig(
        stream=sys.stdout,
        format="   [log] %(levelname)s %(name)s: %(message)s",
        level=logging.WARNING,
    )
    logging.getLogger("hypermail_django.transport").setLevel(logging.ERROR)
    directory = Path(tempfile.mkdtemp(prefix="hypermail-background-"))
    port = free_port()
    configure(directory / "tasks.sqlite3", port)
    from django.core.mail import EmailMessage
    from django.core.management import call_command
    from django.db import transaction

    from hypermail_django.background import enqueue_messages

    call_command("migrate", verbosity=0)
    server = SMTPTestServer(port=port)  # not started: the SMTP server is down

    print("1. A request enqueues three emails (the SMTP server is down)")
    with transaction.atomic():
        # ... the request's own writes (an order, a sign-up) go here ...
        enqueued = enqueue_messages(
            EmailMessage(f"Order {n} shipped", "On its way.", to=[f"c{n}@example.com"])
            for n in (1, 2, 3)
        )
        print(f"   inside the transaction: {len(enqueued)} task(s) enqueued")
    print(f"   after the commit: {len(enqueued)} task(s), {task_counts()}")
    print(f"   Message-IDs: {enqueued.message_ids[0]}, ...")

    print("2. A worker runs while the server is still down")
    run_worker()
    print(f"   each email was re-enqueued for later: {task_counts()}")

    print("3. The server comes up; the worker runs once the retries are due")
    server.start()
    try:
        deadline = time.monotonic() + 30
        while len(server.messages) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)  # the re-enqueued tasks are due 1 s after step 2
            run_worker()
        received = server.wait_for_messages(3)
        print(f"   the server accepted {len(received)} message(s): ", end="")
        print(", ".join(m.rcpt_tos[0] for m in received))
        print(f"   tasks: {task_counts()}")
    finally:
        server.stop()

    print("4. Recovery of tasks left RUNNING by a killed worker (cron it)")
    call_command("hypermail_requeue_stale", dry_run=True)


if __name__ == "__main__":
    main()
