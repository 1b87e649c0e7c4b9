"""The reset email leaves the request: a Django Tasks task, or a thread.

The request hands over only the typed address and the link template (a
:class:`ResetJob`, plain JSON). The job looks the address up and sends to
every active account with a usable password that has it, or to nobody. So the
request does the same work -- no user query at all -- whether or not the
account exists, and answers as fast either way.

``HYPERMAIL_PASSWORD_RESET_DELIVERY`` picks the mechanism:

- ``"auto"`` (default): a Django Tasks task when the project configures a task
  backend that runs tasks elsewhere -- the ``TASKS`` alias
  ``HYPERMAIL_BACKGROUND_BACKEND``, queue ``HYPERMAIL_BACKGROUND_QUEUE`` -- and
  a background thread when there is no Tasks framework or its backend is the
  ``ImmediateBackend`` (Django's default, which would run the task inside the
  request);
- ``"tasks"``: always a task (whatever the backend does with it);
- ``"thread"``: always a thread of this process.

Either way the job starts after the current transaction commits. The thread
pool is small and bounded; :func:`wait_for_deliveries` lets tests and scripts
wait for it.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from dataclasses import asdict, dataclass
from typing import Any

from django.db import close_old_connections, connections, transaction

from ..conf.password_reset import ResetSettings, get_settings
from ..exceptions import ConfigurationError

__all__ = [
    "TASK_PATH",
    "ResetJob",
    "delivery_mode",
    "dispatch",
    "run_job",
    "wait_for_deliveries",
]

#: The import path of the task, stored with every queued task: do not move it.
TASK_PATH = "hypermail_django.auth.tasks.send_password_reset"
#: Threads that send reset emails in thread mode.
THREAD_WORKERS = 2
#: Jobs that may wait for a thread; past it, requests are dropped (and logged)
#: rather than letting a flood grow memory without bound.
MAX_PENDING = 1000

logger = logging.getLogger("hypermail_django.auth")


@dataclass(frozen=True)
class ResetJob:
    """What a background job needs to send (or not) one reset email."""

    #: The address as typed (the job finds the accounts that have it).
    email: str
    #: Absolute link template with ``{uid}`` and ``{token}``, built in the
    #: request (so its host was checked there).
    url_template: str
    #: The request's language, for the email.
    language: str | None = None
    #: The sender; None: the settings, read by the job.
    from_email: str | None = None
    #: The mailer alias; None: the settings, read by the job.
    using: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> ResetJob:
        """Rebuild a job from :meth:`to_json`; ``ValueError`` if it is not one."""
        if not isinstance(data, dict) or not all(
            isinstance(data.get(name), str) for name in ("email", "url_template")
        ):
            raise ValueError("Not a password reset job payload.")
        optional = ("language", "from_email", "using")
        for name in optional:
            if not isinstance(data.get(name), (str, type(None))):
                raise ValueError(f"Password reset job payload: bad {name!r}.")
        return cls(
            email=data["email"],
            url_template=data["url_template"],
            **{name: data.get(name) for name in optional},
        )


def run_job(job: ResetJob) -> int:
    """Send the reset email to every account that may reset with
    ``job.email``; return how many were sent (usually 0 or 1).

    The lookup is Django's ``PasswordResetForm.get_users()``: a
    case-insensitive match on the email field, active users with a usable
    password only.
    """
    from django.contrib.auth.forms import PasswordResetForm

    from .emails import send_password_reset_email

    sent = 0
    for user in PasswordResetForm().get_users(job.email):
        sent += send_password_reset_email(
            user,
            reset_url_template=job.url_template,
            from_email=job.from_email,
            using=job.using,
            language=job.language,
        )
    if not sent:
        logger.info("Password reset requested for an address with no account.")
    return sent


def delivery_mode(conf: ResetSettings | None = None) -> str:
    """``"tasks"`` or ``"thread"``: how a job leaves the request now."""
    mode = (conf or get_settings()).delivery
    if mode != "auto":
        return mode
    try:
        from ..background.framework import MODULE, InvalidTaskBackend, task_backends
        from ..conf.background_delivery import get_settings as background_settings
    except ConfigurationError:  # no Tasks framework on this Django
        return "thread"
    alias = background_settings().backend
    try:
        backend = task_backends[alias]
    except InvalidTaskBackend as exc:
        raise ConfigurationError(
            f"HYPERMAIL_BACKGROUND_BACKEND is {alias!r}, which is not a usable "
            f"TASKS alias ({exc}). Fix TASKS, or set "
            "HYPERMAIL_PASSWORD_RESET_DELIVERY = 'thread'.",
            code="invalid_task_backend",
        ) from exc
    from importlib import import_module

    immediate = import_module(f"{MODULE}.backends.immediate").ImmediateBackend
    return "thread" if isinstance(backend, immediate) else "tasks"


def dispatch(job: ResetJob, conf: ResetSettings | None = None) -> None:
    """Hand ``job`` to a task or a thread, once the transaction commits.

    A task backend that is misconfigured fails here, in the request, for
    every address alike.
    """
    if delivery_mode(conf) == "tasks":
        task = _bound_task()

        def submit() -> None:
            task.enqueue(payload=job.to_json())

    else:

        def submit() -> None:
            _submit_to_thread(job)

    connection = transaction.get_connection()
    if connection.in_atomic_block and _only_test_transactions(connection):
        # Django's TestCase wraps each test in transactions that never commit,
        # so on_commit() would never send, and a thread would not see the
        # test's rows: do now, in this thread, what a commit would start.
        if delivery_mode(conf) == "tasks":
            submit()
        else:
            _run_here(job)
    elif connection.in_atomic_block:
        transaction.on_commit(submit)
    else:
        submit()


def _only_test_transactions(connection: Any) -> bool:
    """Whether every open atomic block is one of Django's TestCase (which
    marks them ``_from_testcase``): the request itself runs in autocommit."""
    blocks = getattr(connection, "atomic_blocks", [])
    return bool(blocks) and all(getattr(b, "_from_testcase", False) for b in blocks)


def _run_here(job: ResetJob) -> None:
    try:
        run_job(job)
    except Exception:
        # As in the thread: a failure is logged, never shown to the caller.
        logger.exception("Password reset email could not be sent.")


def _bound_task() -> Any:
    """The reset task on the configured backend and queue, checked now."""
    from ..background.framework import InvalidTaskBackend, TaskException
    from ..conf.background_delivery import get_settings as background_settings

    conf = background_settings()
    try:
        from .tasks import send_password_reset

        return send_password_reset.using(backend=conf.backend, queue_name=conf.queue)
    except (TaskException, InvalidTaskBackend) as exc:
        raise ConfigurationError(
            f"Cannot enqueue password reset tasks on the TASKS backend "
            f"{conf.backend!r}, queue {conf.queue!r} ({exc}). Check TASKS and "
            "HYPERMAIL_BACKGROUND_BACKEND / HYPERMAIL_BACKGROUND_QUEUE, or set "
            "HYPERMAIL_PASSWORD_RESET_DELIVERY = 'thread'.",
            code="invalid_task_backend",
        ) from exc


# -- thread mode --------------------------------------------------------------

_lock = threading.Lock()
_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_pid: int | None = None
_pending: set[concurrent.futures.Future[None]] = set()


def _submit_to_thread(job: ResetJob) -> None:
    global _executor, _executor_pid
    with _lock:
        if _executor is None or _executor_pid != os.getpid():
            # A forked child inherits the object but not the threads.
            _executor = concurrent.futures.ThreadPoolExecutor(
                THREAD_WORKERS, thread_name_prefix="hypermail-password-reset"
            )
            _executor_pid = os.getpid()
            _pending.clear()
        if len(_pending) >= MAX_PENDING:
            logger.error(
                "Password reset email dropped: %d already wait for a thread.",
                len(_pending),
            )
            return
        future = _executor.submit(_run_in_thread, job)
        _pending.add(future)
    future.add_done_callback(_forget)


def _forget(future: concurrent.futures.Future[None]) -> None:
    with _lock:
        _pending.discard(future)


def _run_in_thread(job: ResetJob) -> None:
    close_old_connections()
    try:
        run_job(job)
    except Exception:
        # Nobody waits for this thread: the log is where a failure shows.
        logger.exception("Password reset email could not be sent.")
    finally:
        connections.close_all()


def wait_for_deliveries(timeout: float | None = 30.0) -> bool:
    """Wait until every reset email handed to a thread so far is sent (or has
    failed); return False if some are still running after ``timeout`` seconds.

    For tests and scripts; a web process never needs it.
    """
    with _lock:
        pending = list(_pending)
    _, not_done = concurrent.futures.wait(pending, timeout)
    return not not_done
