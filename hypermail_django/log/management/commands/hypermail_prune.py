"""``manage.py hypermail_prune --older-than 30d``: forget old delivery records.

Run it daily (cron, a systemd timer, or a scheduled Django task); see
``docs/delivery-log.md#pruning``.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from hypermail_django.conf.delivery_log import get_settings, parse_duration
from hypermail_django.exceptions import ConfigurationError
from hypermail_django.log.pruning import prune


class Command(BaseCommand):
    help = (
        "Delete delivery-log records older than --older-than (default: "
        "HYPERMAIL_LOG_PRUNE_AFTER, 30d), a batch at a time."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--older-than",
            help="an age such as 30d, 12h, 90m, 2w (default: "
            "HYPERMAIL_LOG_PRUNE_AFTER)",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="records deleted per transaction (default 1000)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            age = (
                parse_duration(options["older_than"], "--older-than")
                if options["older_than"]
                else get_settings().prune_after
            )
        except ConfigurationError as error:
            raise CommandError(str(error)) from error
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        done = prune(age, batch_size=options["batch_size"])
        self.stdout.write(
            f"Deleted {done.deliveries} delivery record(s) and {done.recipients} "
            f"recipient record(s) older than {age} in {done.batches} batch(es)."
        )
