"""The test settings on PostgreSQL (a cluster started by ``tests/postgres.py``)."""

import os

from .settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("HYPERMAIL_TEST_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("HYPERMAIL_TEST_PG_PORT", "5432"),
        "USER": os.environ.get("HYPERMAIL_TEST_PG_USER", "hypermail"),
        "NAME": "hypermail",
    }
}
