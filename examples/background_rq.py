"""Background delivery on RQ workers: the SMTP server is down, nothing is lost.

Run it from the repository root (it needs Debian's ``redis-server`` and the
``rq`` extra, ``pip install "./hypermail-django[rq]"``):

    .venv/bin/python examples/background_rq.py

It starts a throwaway ``redis-server`` on 127.0.0.1 (no persistence, a
temporary directory, stopped at the end), uses it as the task queue
(django-tasks-rq's ``RQBackend`` through django-rq, with a queue of its own
for email), FluxMailBackend as the mailer, and an SMTP test server on
127.0.0.1 (``hypermail_django.testing``) that starts *down*. It shows:

1. a "request" enqueueing three emails inside a transaction: the jobs reach
   Redis when it commits, and no SMTP connection is made;
2. an RQ worker (``manage.py rqworker --burst``, run in this process) failing
   to reach the server: each email is re-enqueued for a little later, as a
   job in RQ's scheduled registry;
3. the server coming up and, once those jobs are due, the next worker run
   (its scheduler enqueues them) delivering all three;
4. ``manage.py hypermail_requeue_stale --dry-run``, the recovery step for the
   jobs of a killed worker (none here).

It exits with status 1 if any email was not delivered.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer

if TYPE_CHECKING:
    from rq import Queue

BACKEND = "hypermail_django.backends.FluxMailBackend"
QUEUE = "email"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server() -> Iterator[str]:
    """Run Debian's redis-server on a free loopback port; yield its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit(
            "This example needs Debian's redis-server: apt-get install redis-server"
        )
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="hypermail-rq-") as directory:
        # Loopback only, a free port, nothing written to disk.
        command = [binary, "--bind", "127.0.0.1", "--port", str(port)]
        command += ["--save", "", "--appendonly", "no", "--dir", directory]
        process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_redis(process, port)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_for_redis(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start on port {port}")
        time.sleep(0.05)


def configure(redis_url: str, port: int) -> None:
    mailer = {"host": "127.0.0.1", "port": port, "max_retries": 0}
    mail_settings: dict[str, Any]
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
            "django_rq",
            "django_tasks_rq",
            "hypermail_django",
        ],
        # The request's own database: the jobs are enqueued when it commits.
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
        },
        USE_TZ=True,
        # Email on a queue of its own; the default backend must also accept
        # the queue "default" (docs/background-delivery.md).
        RQ_QUEUES={"default": {"URL": redis_url}, QUEUE: {"URL": redis_url}},
        TASKS={
            "default": {
                "BACKEND": "django_tasks_rq.RQBackend",
                "QUEUES": ["default", QUEUE],
            }
        },
        HYPERMAIL_BACKGROUND_QUEUE=QUEUE,
        DEFAULT_FROM_EMAIL="shop@example.com",
        # Short waits for the demo; the defaults are 60 s, doubling up to 900 s.
        HYPERMAIL_BACKGROUND_REQUEUE_DELAY=1.0,
        HYPERMAIL_BACKGROUND_REQUEUE_MAX_DELAY=5.0,
        **mail_settings,
    )
    django.setup()


def email_queue() -> Queue:
    import django_rq

    return django_rq.get_queue(QUEUE)


def job_counts() -> dict[str, int]:
    """Jobs waiting in the queue and in RQ's registries of the email queue."""
    from rq.registry import (
        FailedJobRegistry,
        FinishedJobRegistry,
        ScheduledJobRegistry,
    )

    queue = email_queue()
    return {
        "queued": queue.count,
        "scheduled": ScheduledJobRegistry(queue=queue).count,
        "finished": FinishedJobRegistry(queue=queue).count,
        "failed": FailedJobRegistry(queue=queue).count,
    }


def seconds_until_due() -> float:
    """How long until the last scheduled email job may be enqueued."""
    from rq.registry import ScheduledJobRegistry

    registry = ScheduledJobRegistry(queue=email_queue())
    times = [registry.get_scheduled_time(i) for i in registry.get_job_ids()]
    return max([t.timestamp() - time.time() for t in times] + [0.0])


def run_worker() -> None:
    """What ``manage.py rqworker email --burst ...`` does: enqueue the
    scheduled jobs that are due, run every queued job, and return."""
    from django.core.management import call_command

    call_command(
        "rqworker",
        QUEUE,
        burst=True,
        # django-tasks-rq's job class runs the task and records its result.
        job_class="django_tasks_rq.backend.Job",
        # Each job in the worker process: no fork per email.
        worker_class="rq.worker.SimpleWorker",
        # Brings back the emails re-enqueued for later.
        with_scheduler=True,
        verbosity=0,
    )


def main() -> int:
    # hypermail-django logs each re-enqueue (WARNING) and each give-up (ERROR).
    logging.basicConfig(
        stream=sys.stdout,
        format="   [log] %(levelname)s %(name)s: %(message)s",
        level=logging.WARNING,
    )
    logging.getLogger("hypermail_django.transport").setLevel(logging.ERROR)
    with redis_server() as redis_url:
        port = free_port()
        configure(redis_url, port)
        from django.core.mail import EmailMessage
        from django.core.management import call_command
        from django.db import transaction

        from hypermail_django.background import enqueue_messages

        server = SMTPTestServer(port=port)  # not started: the SMTP server is down
        print(f"A throwaway redis-server runs at {redis_url}")

        print("1. A request enqueues three emails (the SMTP server is down)")
        with transaction.atomic():
            # ... the request's own writes (an order, a sign-up) go here ...
            enqueued = enqueue_messages(
                EmailMessage(
                    f"Order {n} shipped", "On its way.", to=[f"c{n}@example.com"]
                )
                for n in (1, 2, 3)
            )
            print(f"   inside the transaction: {email_queue().count} job(s) in Redis")
        print(f"   after the commit: {len(enqueued)} task(s), {job_counts()}")
        print(f"   Message-IDs: {enqueued.message_ids[0]}, ...")

        print("2. An RQ worker runs (burst mode) while the server is still down")
        run_worker()
        print(f"   each email was re-enqueued for later: {job_counts()}")
        print(
            "   (each job finished and scheduled a new one: the retries are "
            "hypermail-django's, not RQ's)"
        )

        print("3. The server comes up; the worker runs once the retries are due")
        server.start()
        try:
            print("   waiting until the scheduled jobs are due")
            time.sleep(seconds_until_due())
            run_worker()
            deadline = time.monotonic() + 30
            while len(server.messages) < 3 and time.monotonic() < deadline:
                time.sleep(0.2)  # RQ's scheduler counts whole seconds
                run_worker()
            received = server.messages
        finally:
            server.stop()
        print(f"   the server accepted {len(received)} message(s): ", end="")
        print(", ".join(m.rcpt_tos[0] for m in received))
        print(f"   jobs: {job_counts()}")
        expected = {f"c{n}@example.com" for n in (1, 2, 3)}
        if sorted(m.rcpt_tos[0] for m in received) != sorted(expected):
            print("   not every email was delivered exactly once", file=sys.stderr)
            return 1

        print("4. Recovery of jobs left by a killed worker (cron it)")
        call_command("hypermail_requeue_stale", dry_run=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
