"""Minimal settings: tests configure the mailer they exercise themselves."""

SECRET_KEY = "hypermail-tests-not-secret"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "hypermail_django",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
DEFAULT_FROM_EMAIL = "noreply@example.com"
SERVER_EMAIL = "server@example.com"
ADMINS = ["admin@example.com"]
