"""Settings for benchmark processes (and the bulk sender's worker processes).

The SMTP server comes from ``BENCH_SMTP_HOST``/``BENCH_SMTP_PORT``.
"""

import os

from hypermail_django.compat import MAILERS_SUPPORTED

SECRET_KEY = "benchmarks-not-secret"
INSTALLED_APPS: list[str] = []
DEFAULT_FROM_EMAIL = "bench@example.com"
USE_TZ = True

_OPTIONS = {
    "host": os.environ.get("BENCH_SMTP_HOST", "127.0.0.1"),
    "port": int(os.environ.get("BENCH_SMTP_PORT", "2525")),
}
if MAILERS_SUPPORTED:
    MAILERS = {
        "default": {
            "BACKEND": "hypermail_django.backends.FluxMailBackend",
            "OPTIONS": _OPTIONS,
        }
    }
else:
    EMAIL_BACKEND = "hypermail_django.backends.FluxMailBackend"
    EMAIL_HOST = _OPTIONS["host"]
    EMAIL_PORT = _OPTIONS["port"]
