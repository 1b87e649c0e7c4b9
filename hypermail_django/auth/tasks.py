"""The reset task: look an address up and send the reset email, in a worker.

Its import path, ``hypermail_django.auth.tasks.send_password_reset``, is stored
with every queued task: it must not move while tasks may be waiting.

Imported on first use, never when the app loads: the ``@task`` decorator looks
up the ``TASKS`` backends, which must not happen while Django sets up.
"""

from __future__ import annotations

from typing import Any

from ..background.framework import task
from .delivery import ResetJob, run_job


@task()
def send_password_reset(payload: dict[str, Any]) -> dict[str, int]:
    """Run one :class:`ResetJob`; return how many emails were sent."""
    return {"sent": run_job(ResetJob.from_json(payload))}
