"""The worker project on Redis: django-tasks-rq instead of django-tasks-db.

Environment: as :mod:`.settings`, plus ``HYPERMAIL_CRASH_REDIS_URL``
(``redis://127.0.0.1:PORT/0`` of the test's redis-server).
"""

import os

from .settings import *  # noqa: F403
from .settings import INSTALLED_APPS

INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django_tasks_db"]
INSTALLED_APPS += ["django_rq"]
TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
# A job's timeout bounds its heartbeat deadline (timeout + 60 s with
# SimpleWorker): 20 s keeps the wait for a killed worker's job short; a
# delivery takes milliseconds. Production: RQ's default, 180 s.
RQ_QUEUES = {
    "default": {
        "URL": os.environ["HYPERMAIL_CRASH_REDIS_URL"],
        "DEFAULT_TIMEOUT": 20,
    }
}
