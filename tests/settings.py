"""Minimal settings: tests configure the mailer they exercise themselves."""

import django

SECRET_KEY = "hypermail-tests-not-secret"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.admin",
    "django.contrib.staticfiles",
    "hypermail_django",
    "hypermail_django.log",
]
# The delivery log is installed (its tables exist) but records only in the
# tests that turn it on (tests/log/test_delivery_log*.py): elsewhere tests send
# mail without database access.
HYPERMAIL_LOG_ENABLED = False
# The admin's CSS and JavaScript, served by the browser tests' live server.
STATIC_URL = "/static/"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
DEFAULT_FROM_EMAIL = "noreply@example.com"
SERVER_EMAIL = "server@example.com"
# Django 6.0 takes plain addresses; 5.2 wants (name, address) pairs.
ROOT_URLCONF = "tests.urls"

ADMINS = (
    ["admin@example.com"]
    if django.VERSION >= (6, 0)
    else [("Admin", "admin@example.com")]
)
