"""Django's Tasks framework, from wherever this Django version has it.

Django 6.0+ ships it as ``django.tasks``; on Django 5.2 the ``django-tasks``
backport provides the same API as ``django_tasks``. Everything else in this
package imports the framework from here.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any

from ..exceptions import ConfigurationError

#: The module that holds the framework: ``django.tasks`` or ``django_tasks``.
MODULE = "django.tasks" if find_spec("django.tasks") is not None else "django_tasks"


def _load(name: str) -> Any:
    try:
        return import_module(name)
    except ImportError:
        raise ConfigurationError(
            "Background delivery needs Django's Tasks framework: upgrade to "
            "Django 6.0+, or install the backport on Django 5.2 with "
            "pip install 'hypermail-django[tasks]'.",
            code="tasks_unavailable",
        ) from None


_tasks = _load(MODULE)
_base = _load(f"{MODULE}.base")
_backends_base = _load(f"{MODULE}.backends.base")
_exceptions = _load(f"{MODULE}.exceptions")
# The backport connects its setting_changed receiver (which resets the backends
# when TASKS changes, as under override_settings) only once this is imported.
_load(f"{MODULE}.signals")

task = _tasks.task
task_backends = _tasks.task_backends
Task = _base.Task
TaskContext = _base.TaskContext
TaskResult = _base.TaskResult
TaskResultStatus = _base.TaskResultStatus
BaseTaskBackend = _backends_base.BaseTaskBackend
#: Base of the framework's errors about a task (an invalid queue, run_after...).
TaskException: type[Exception] = _exceptions.TaskException
#: An unknown or broken ``TASKS`` alias (an ``ImproperlyConfigured``).
InvalidTaskBackend: type[Exception] = (
    getattr(_exceptions, "InvalidTaskBackend", None)
    or _exceptions.InvalidTaskBackendError
)
