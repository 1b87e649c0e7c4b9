"""``manage.py hypermail_requeue_stale``: recover emails of killed task workers.

See :mod:`hypermail_django.background.recovery` for why this is needed with
django-tasks-db, :mod:`hypermail_django.background.recovery_rq` for RQ, and
``docs/background-delivery.md`` for when to run it.
"""

from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from hypermail_django.background.recovery import requeue_stale_tasks
from hypermail_django.exceptions import ConfigurationError


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ArgumentTypeError(
            f"expected a number of seconds, got {value!r}"
        ) from None
    if seconds < 0:
        raise ArgumentTypeError("must be 0 or more seconds")
    return seconds


class Command(BaseCommand):
    help = (
        "Make email tasks that a django-tasks-db worker left RUNNING (because it "
        "was killed) READY again, so another worker sends them; on django-tasks-rq, "
        "requeue the email jobs of RQ workers that stopped heart-beating. "
        "At-least-once: a message its worker had already sent is sent again."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--older-than",
            type=_seconds,
            default=None,
            metavar="SECONDS",
            help=(
                "Only tasks RUNNING for longer than this (default: "
                "HYPERMAIL_BACKGROUND_STALE_AFTER, 900). Use 0 only when no "
                "worker of the backend is running."
            ),
        )
        parser.add_argument(
            "--backend",
            default=None,
            help="TASKS alias (default: HYPERMAIL_BACKGROUND_BACKEND, 'default').",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="List the tasks that would be requeued; change nothing.",
        )

    def handle(
        self,
        *,
        older_than: float | None,
        backend: str | None,
        dry_run: bool,
        **options: Any,
    ) -> None:
        try:
            tasks = requeue_stale_tasks(
                older_than=older_than, backend=backend, dry_run=dry_run
            )
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from exc
        verb = "Would requeue" if dry_run else "Requeued"
        self.stdout.write(f"{verb} {len(tasks)} stale email task(s).")
        for task in tasks:
            since = task.started_at.isoformat() if task.started_at else "?"
            self.stdout.write(
                f"  task {task.id} message {task.message_id} running since {since}"
            )
