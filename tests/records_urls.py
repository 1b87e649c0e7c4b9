"""URLs and settings for the admin and previews tests (client and browser).

The test settings have no middleware or templates; the admin and the preview
pages need sessions, CSRF, auth, messages and Django templates. Sessions live
in the cache, so no table is needed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.test import override_settings
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("mail-previews/", include("hypermail_django.previews.urls")),
]

RECORDS_SETTINGS: dict[str, Any] = {
    "ROOT_URLCONF": "tests.records_urls",
    "ALLOWED_HOSTS": ["testserver", "localhost", "127.0.0.1"],
    "MIDDLEWARE": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    "SESSION_ENGINE": "django.contrib.sessions.backends.cache",
    "MESSAGE_STORAGE": "django.contrib.messages.storage.cookie.CookieStorage",
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
    "STATIC_URL": "/static/",
    "DEBUG": False,
}


@contextlib.contextmanager
def records_site(**overrides: Any) -> Iterator[None]:
    """Serve the admin and the previews, with the settings they need."""
    with override_settings(**{**RECORDS_SETTINGS, **overrides}):
        yield
