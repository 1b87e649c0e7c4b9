"""Durability of background delivery, with real processes.

django-tasks-db's worker (``manage.py db_worker``) runs in subprocesses of the
worker project in ``tests/background_project/`` (a SQLite file database, a
FluxMailBackend aimed at a fixed port), the SMTP server runs in this process,
and the worker is killed with SIGKILL in the middle of its work.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from hypermail_django.background import TASK_PATH
from hypermail_django.testing import SMTPTestServer

from ..paths import ROOT

TABLE = "django_tasks_database_dbtaskresult"
MESSAGES = 500
#: Bounded waits: generous, since a loaded 2-core CI machine runs the tox
#: environments side by side; every wait ends as soon as its condition holds.
WAIT = 180.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Project:
    """The worker project in a temporary directory: run its commands and
    workers, and read its task table."""

    def __init__(self, directory: Path, smtp_port: int) -> None:
        self.directory = directory
        self.db = directory / "tasks.sqlite3"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.background_project.settings",
            "HYPERMAIL_CRASH_DB": str(self.db),
            "HYPERMAIL_CRASH_SMTP_PORT": str(smtp_port),
        }
        self.workers: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def run(self, *args: str) -> str:
        """Run ``python *args`` in the project; return its stdout."""
        result = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        assert result.returncode == 0, f"{args} failed:\n{result.stderr}"
        return result.stdout

    def manage(self, *args: str) -> str:
        return self.run("-m", "django", *args)

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        log = open(self.directory / f"{name}.log", "wb")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "db_worker",
                "--worker-id",
                name,
                "--interval",
                "0.05",
                "--no-startup-delay",
                "--no-reload",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        """The tail of every worker's output, for failure messages."""
        tails = []
        for path in sorted(self.directory.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-15:]
            tails.append(f"--- {path.name} (last lines)\n" + "\n".join(lines))
        return "\n".join(tails)

    def close(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
        for log in self._logs:
            log.close()

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        uri = f"file:{self.db}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=60)) as db:
            return db.execute(sql, params).fetchall()

    def statuses(self) -> dict[str, int]:
        rows = self.query(
            f"SELECT status, COUNT(*) FROM {TABLE} WHERE task_path = ? GROUP BY status",
            TASK_PATH,
        )
        return dict(rows)

    def running(self) -> dict[str, str]:
        """Task id -> Message-ID of every email task marked RUNNING."""
        rows = self.query(
            f"SELECT id, args_kwargs FROM {TABLE} "
            "WHERE status = 'RUNNING' AND task_path = ?",
            TASK_PATH,
        )
        return {
            str(task_id): json.loads(args)["kwargs"]["payload"]["message_id"]
            for task_id, args in rows
        }


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    project = Project(tmp_path, _free_port())
    project.manage("migrate", "--verbosity", "0")
    yield project
    project.close()


def _wait_until(condition: Callable[[], bool], what: str, project: Project) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"gave up after {WAIT:.0f} s waiting for {what}\n{project.logs()}"
            )
        time.sleep(0.05)


class Received:
    """The Message-IDs the server accepted, in order, parsed once each (the
    test polls this while the server thread is busy receiving)."""

    def __init__(self, server: SMTPTestServer) -> None:
        self.server = server
        self._ids: list[str] = []

    def ids(self) -> list[str]:
        for message in self.server.messages[len(self._ids) :]:
            found = re.search(rb"^Message-ID: *(<[^>]*>)", message.data, re.M | re.I)
            assert found, message.data[:500]
            self._ids.append(found.group(1).decode())
        return list(self._ids)

    def distinct(self) -> int:
        return len(set(self.ids()))


@pytest.mark.timeout(600)
def test_500_messages_survive_a_down_server_and_a_killed_worker(project, capsys):
    started = time.monotonic()
    # 1. The SMTP server is down (nothing listens on the port) while the
    #    request enqueues 500 messages: enqueueing never talks SMTP.
    enqueued = json.loads(
        project.run("-m", "tests.background_project.enqueue", str(MESSAGES))
    )
    assert len(set(enqueued)) == MESSAGES
    assert project.statuses() == {"READY": MESSAGES}
    server = SMTPTestServer(port=int(project.env["HYPERMAIL_CRASH_SMTP_PORT"]))
    received = Received(server)

    try:
        # 2. A worker starts and fails against the down server: each failure
        #    re-enqueues its message for later (a new READY task).
        first = project.start_worker("worker-1")
        _wait_until(
            lambda: sum(project.statuses().values()) >= MESSAGES + 20,
            "the worker to re-enqueue messages while the server is down",
            project,
        )
        assert server.messages == []

        # 3. The server comes up; the worker delivers; after 100 messages it is
        #    killed with SIGKILL: no clean-up, its task may stay RUNNING.
        server.start()
        server.wait_for_messages(100, timeout=WAIT)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=WAIT)
        delivered_at_kill = received.distinct()
        assert delivered_at_kill < MESSAGES, "the worker finished before the kill"

        # 4. Recovery: email tasks the dead worker left RUNNING go back to
        #    READY (--older-than 0 is safe: no worker is running now).
        left_running = project.running()
        output = project.manage("hypermail_requeue_stale", "--older-than", "0")
        assert f"Requeued {len(left_running)} stale email task(s)." in output
        assert project.running() == {}

        # 5. A new worker delivers the rest.
        project.start_worker("worker-2")

        def done() -> bool:
            if received.distinct() < MESSAGES:
                return False
            statuses = project.statuses()  # any duplicate still on its way?
            return statuses.get("READY", 0) == statuses.get("RUNNING", 0) == 0

        _wait_until(done, "every message to be delivered", project)
    finally:
        project.close()
        server.stop()

    counts = collections.Counter(received.ids())
    assert set(counts) == set(enqueued), "a message was lost, or an unknown one sent"
    assert project.statuses().get("FAILED", 0) == 0, project.logs()
    duplicates = {mid: n - 1 for mid, n in counts.items() if n > 1}
    # At-least-once: the only way to send a message twice is the kill landing
    # after the server accepted it and before its task was marked done.
    unexplained = set(duplicates) - set(left_running.values())
    assert not unexplained, f"duplicates not caused by the kill: {unexplained}"

    if duplicates:
        why = (
            f"the worker was killed after the server accepted "
            f"{', '.join(sorted(duplicates))} and before its task was marked done; "
            "hypermail_requeue_stale put the task back and it was sent again"
        )
    else:
        why = (
            "the kill did not land between the server accepting a message and its "
            "task being marked done, so nothing was sent twice"
        )
    summary = (
        f"crash test: {len(counts)}/{MESSAGES} delivered, "
        f"{sum(duplicates.values())} duplicate(s) (at-least-once: {why}); "
        f"{delivered_at_kill} delivered before the SIGKILL, "
        f"{len(left_running)} task(s) left RUNNING and requeued, "
        f"{counts.total()} SMTP deliveries in {time.monotonic() - started:.1f} s"
    )
    with capsys.disabled():
        print(f"\n{summary}")


def test_requeue_stale_touches_only_old_running_email_tasks(project):
    project.run("-m", "tests.background_project.enqueue", "3")
    old, recent, ready = (row[0] for row in project.query(f"SELECT id FROM {TABLE}"))
    # What killed workers leave behind: RUNNING tasks nobody will finish, one
    # an hour old and one that may still be running. And another app's task
    # in the same state, which may not be safe to run twice: never touched.
    with contextlib.closing(sqlite3.connect(project.db, timeout=60)) as db, db:
        db.row_factory = sqlite3.Row
        for task_id, since in ((old, "-1 hour"), (recent, "-1 second")):
            db.execute(
                f"UPDATE {TABLE} SET status = 'RUNNING', "
                "started_at = datetime('now', ?) WHERE id = ?",
                (since, task_id),
            )
        other = dict(
            db.execute(f"SELECT * FROM {TABLE} WHERE id = ?", (old,)).fetchone()
        )
        other.update(id="0" * 32, task_path="other_app.tasks.not_idempotent")
        columns = ", ".join(other)
        marks = ", ".join("?" for _ in other)
        db.execute(
            f"INSERT INTO {TABLE} ({columns}) VALUES ({marks})", tuple(other.values())
        )

    dry = project.manage("hypermail_requeue_stale", "--dry-run")
    assert "Would requeue 1 stale email task(s)." in dry
    assert set(project.running()) == {old, recent}

    output = project.manage("hypermail_requeue_stale")
    assert "Requeued 1 stale email task(s)." in output
    assert set(project.running()) == {recent}
    status = dict(project.query(f"SELECT id, status FROM {TABLE}"))
    assert status == {
        old: "READY",
        recent: "RUNNING",
        ready: "READY",
        "0" * 32: "RUNNING",
    }

    output = project.manage("hypermail_requeue_stale", "--older-than", "0")
    assert "Requeued 1 stale email task(s)." in output
    assert project.running() == {}
    assert dict(project.query(f"SELECT id, status FROM {TABLE}"))["0" * 32] == "RUNNING"


def test_the_example_runs():
    result = subprocess.run(
        [sys.executable, "examples/background_delivery.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 0, result.stderr
    assert "each email was re-enqueued for later" in result.stdout
    assert "the server accepted 3 message(s)" in result.stdout
    assert "Would requeue 0 stale email task(s)." in result.stdout


def test_the_rq_example_runs():
    """The same story on Redis workers: the example starts its own
    redis-server, and stops it when it ends."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs Debian's redis-server (scripts/_system.sh installs it)")
    pytest.importorskip("django_tasks_rq")
    result = subprocess.run(
        [sys.executable, "examples/background_rq.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "inside the transaction: 0 job(s) in Redis" in out
    assert "after the commit: 3 task(s), {'queued': 3, 'scheduled': 0" in out
    assert "re-enqueued for later: {'queued': 0, 'scheduled': 3, 'finished': 3" in out
    assert "the server accepted 3 message(s)" in out
    assert "jobs: {'queued': 0, 'scheduled': 0, 'finished': 6, 'failed': 0}" in out
    assert "Would requeue 0 stale email task(s)." in out
    port = int(re.search(r"redis://127\.0\.0\.1:(\d+)/0", out)[1])
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), 1):
        pass  # the example's redis-server is gone
