"""Benchmark settings with the delivery log installed, on a SQLite file
(``BENCH_DB``), for ``benchmarks.delivery_log`` and its worker processes."""

import os

from benchmarks.settings import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.admin",
    "hypermail_django",
    "hypermail_django.log",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", ":memory:"),
        # What a production SQLite setup would use: WAL, no fsync per commit.
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        },
    }
}
HYPERMAIL_LOG_KEEP = os.environ.get("BENCH_LOG_KEEP", "headers")
