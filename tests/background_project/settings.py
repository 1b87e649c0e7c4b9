"""Settings of the worker project: django-tasks-db on a SQLite file, FluxMailBackend.

Environment:

- ``HYPERMAIL_CRASH_DB``: path of the SQLite database file;
- ``HYPERMAIL_CRASH_SMTP_PORT``: port of the SMTP server on 127.0.0.1 (which
  may not be listening yet: that is the point of the test).
"""

import os

import django

SECRET_KEY = "hypermail-background-tests-not-secret"
USE_TZ = True
INSTALLED_APPS = [
    # Django 5.2 has no django.tasks: the backport provides it.
    *(["django_tasks"] if django.VERSION < (6, 0) else []),
    "django_tasks_db",
    "hypermail_django",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["HYPERMAIL_CRASH_DB"],
        # Workers, commands and the test read and write the file at once.
        "OPTIONS": {"timeout": 60},
    }
}
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
DEFAULT_FROM_EMAIL = "crash-test@example.com"

_MAILER = {
    "host": "127.0.0.1",
    "port": int(os.environ["HYPERMAIL_CRASH_SMTP_PORT"]),
    "timeout": 10.0,
    # A down server fails each task at once; re-enqueueing does the waiting.
    "max_retries": 0,
}
if django.VERSION >= (6, 1):
    MAILERS = {
        "default": {
            "BACKEND": "hypermail_django.backends.FluxMailBackend",
            "OPTIONS": _MAILER,
        }
    }
else:
    EMAIL_BACKEND = "hypermail_django.backends.FluxMailBackend"
    EMAIL_HOST = _MAILER["host"]
    EMAIL_PORT = _MAILER["port"]
    EMAIL_TIMEOUT = _MAILER["timeout"]
    EMAIL_FLUXMAIL_MAX_RETRIES = _MAILER["max_retries"]

# Small delays keep the test short; production uses the defaults (60 s, 900 s).
HYPERMAIL_BACKGROUND_REQUEUE_DELAY = 0.2
HYPERMAIL_BACKGROUND_REQUEUE_MAX_DELAY = 1.0

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {
        "hypermail_django": {"handlers": ["stderr"], "level": "WARNING"},
    },
}
