"""URLs and settings for the password-reset tests.

The test settings have no sessions, middleware or template engine; the reset
pages need all three. :func:`reset_flow` brings them (sessions in the cache,
so no table is needed), makes the memory backend the mailer, and starts each
test with an empty outbox and empty rate-limit counters. On the way out it
waits for every reset email handed to a thread, so none is sent after the
test's settings are gone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.core.cache import caches
from django.test import override_settings
from django.urls import include, path

from hypermail_django.auth.delivery import wait_for_deliveries
from hypermail_django.testing.outbox import clear_outbox

from .conftest import mailer_for

MEMORY = "hypermail_django.backends.MemoryBackend"

urlpatterns = [
    path("accounts/", include("hypermail_django.auth.urls")),
    path("api/", include("hypermail_django.auth.api_urls")),
    # The same pages again under an instance namespace of their own.
    path(
        "members/",
        include("hypermail_django.auth.urls", namespace="members"),
    ),
]

FLOW_SETTINGS: dict[str, Any] = {
    "ROOT_URLCONF": "tests.auth_urls",
    "ALLOWED_HOSTS": ["testserver", "www.example.com"],
    "MIDDLEWARE": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
    "SESSION_ENGINE": "django.contrib.sessions.backends.cache",
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                ]
            },
        }
    ],
    "AUTH_PASSWORD_VALIDATORS": [
        {
            "NAME": "django.contrib.auth.password_validation."
            "UserAttributeSimilarityValidator"
        },
        {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
        {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
        {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    ],
    # Fast hashing: tests hash many passwords.
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
}


@contextlib.contextmanager
def reset_flow(**overrides: Any) -> Iterator[None]:
    """The settings the reset flow needs, the memory mailer, a clean slate."""
    with (
        override_settings(**{**FLOW_SETTINGS, **overrides}),
        mailer_for(backend=MEMORY),
    ):
        caches["default"].clear()
        clear_outbox()
        try:
            yield
        finally:
            assert wait_for_deliveries(), "a reset email thread did not finish"
            caches["default"].clear()
