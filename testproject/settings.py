"""An ordinary Django project, used by the demo and the tests.

The mailer comes from ``FLUXMAIL_*`` environment variables when they are set, so
the project can be pointed at any SMTP server; otherwise at 127.0.0.1:1025.
"""

from pathlib import Path

from hypermail_django import options_from_env
from hypermail_django.compat import MAILERS_SUPPORTED

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "testproject-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "hypermail_django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "testproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The demo's templated email, and the login and home pages.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
}
USE_TZ = True
# The password-reset pages (/accounts/password-reset/) and API (/api/) link
# back to the login page; a successful login lands on the page saying who is in.
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
DEFAULT_FROM_EMAIL = "Hypermail demo <demo@example.com>"
SERVER_EMAIL = "server@example.com"
ADMINS = ["admin@example.com"]

MAILER_OPTIONS = {"host": "127.0.0.1", "port": 1025, **options_from_env()}

if MAILERS_SUPPORTED:
    MAILERS = {
        "default": {
            "BACKEND": "hypermail_django.backends.FluxMailBackend",
            "OPTIONS": MAILER_OPTIONS,
        }
    }
else:
    EMAIL_BACKEND = "hypermail_django.backends.FluxMailBackend"
    from hypermail_django.conf.mailer_options import settings_for

    globals().update(settings_for(MAILER_OPTIONS))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"hypermail_django": {"handlers": ["console"], "level": "WARNING"}},
}
