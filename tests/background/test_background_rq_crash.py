"""Durability of background delivery on Redis: django-tasks-rq, real RQ workers.

The worker project of ``tests/background_project/`` with ``settings_rq``
(django-tasks-rq on the session's redis-server), several ``manage.py rqworker``
processes, the SMTP server in this process: it is down while the messages are
enqueued and the workers start, then comes up; one worker is killed with
SIGKILL in the middle of its work.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from hypermail_django.testing import SMTPTestServer

from ..redis_server import redis_url  # noqa: F401 - the session fixture
from .test_background_crash import ROOT, WAIT, Received, _free_port

WAIT = float(os.environ.get("RQ_TEST_WAIT", WAIT))

rq = pytest.importorskip("rq")
redis = pytest.importorskip("redis")
pytest.importorskip("django_tasks_rq")

MESSAGES = 2000
WORKERS = 3


class RQProject:
    """The worker project on Redis: its commands, its RQ workers, its queue."""

    def __init__(self, directory: Path, smtp_port: int, url: str) -> None:
        self.directory = directory
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.background_project.settings_rq",
            "HYPERMAIL_CRASH_DB": str(directory / "unused.sqlite3"),
            "HYPERMAIL_CRASH_SMTP_PORT": str(smtp_port),
            "HYPERMAIL_CRASH_REDIS_URL": url,
        }
        self.connection = redis.Redis.from_url(url)
        self.connection.flushall()
        self.queue = rq.Queue("default", connection=self.connection)
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def run(self, *args: str) -> str:
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

    def start_worker(self, name: str, *, scheduler: bool) -> None:
        log = open(self.directory / f"{name}.log", "wb")  # noqa: SIM115 - closed in close()
        self._logs.append(log)
        command = [sys.executable, "-m", "django", "rqworker", "default"]
        command += ["--name", name, "--worker-class", "rq.worker.SimpleWorker"]
        # django-tasks-rq's job class runs the task and records its result.
        command += ["--job-class", "django_tasks_rq.backend.Job"]
        if scheduler:
            command.append("--with-scheduler")
        self.workers[name] = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def counts(self) -> dict[str, int]:
        """Jobs in the queue and in each registry, read as they are (RQ's own
        ``count()`` would clean a registry up first, which is the workers' and
        the recovery command's business, not the observer's)."""
        registries = rq.registry
        counts = {
            "queued": len(self.queue),
            # Taken off the queue by a worker, not yet registered as started.
            "intermediate": self.connection.llen(self.queue.intermediate_queue_key),
        }
        for name, registry in [
            ("scheduled", registries.ScheduledJobRegistry),
            ("started", registries.StartedJobRegistry),
            ("failed", registries.FailedJobRegistry),
            ("finished", registries.FinishedJobRegistry),
        ]:
            counts[name] = self.connection.zcard(registry(queue=self.queue).key)
        return counts

    def deadlines(self) -> list[float]:
        """Seconds left before each started job's heartbeat deadline."""
        key = rq.registry.StartedJobRegistry(queue=self.queue).key
        now = time.time()
        return [
            round(score - now, 1)
            for _, score in self.connection.zrange(key, 0, -1, withscores=True)
        ]

    def running_on(self, worker: str) -> dict[str, str]:
        """Job id -> Message-ID of the jobs ``worker`` has started.

        RQ registers a job's execution as started (naming its worker) before
        the job itself records its worker and status; a kill can land between
        the two, so either one naming ``worker`` counts."""
        key = rq.registry.StartedJobRegistry(queue=self.queue).key
        jobs = {}
        for entry in self.connection.zrange(key, 0, -1):
            job = self.queue.fetch_job(entry.decode().split(":")[0])
            if job is None:
                continue
            if worker in (job.worker_name, self._execution_worker(entry.decode())):
                jobs[job.id] = job.kwargs["payload"]["message_id"]
        return jobs

    def _execution_worker(self, composite_key: str) -> str:
        from rq.executions import Execution

        execution = Execution.from_composite_key(composite_key, self.connection)
        try:
            execution.refresh()
        except ValueError:  # Its hash expired: nobody to name.
            return ""
        return execution.worker_name

    def stuck(self) -> set[str]:
        """Jobs taken off the queue (RQ's intermediate list) but not started:
        what a worker killed between the two steps leaves behind."""
        key = self.queue.intermediate_queue_key
        started = rq.registry.StartedJobRegistry(queue=self.queue)
        taken = {entry.decode() for entry in self.connection.lrange(key, 0, -1)}
        return {job_id for job_id in taken if job_id not in started}

    def logs(self) -> str:
        tails = []
        for path in sorted(self.directory.glob("*.log")):
            lines = path.read_text(errors="replace").splitlines()[-15:]
            tails.append(f"--- {path.name} (last lines)\n" + "\n".join(lines))
        return "\n".join(tails)

    def close(self) -> None:
        for worker in self.workers.values():
            if worker.poll() is None:
                worker.terminate()
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
        for log in self._logs:
            log.close()


@pytest.fixture
def project(tmp_path: Path, redis_url: str) -> Iterator[RQProject]:  # noqa: F811
    project = RQProject(tmp_path, _free_port(), f"{redis_url}/0")
    yield project
    project.close()


def _wait_until(
    condition: Callable[[], Any],
    what: str | Callable[[], str],
    project: RQProject,
    wait: float = WAIT,
) -> Any:
    deadline = time.monotonic() + wait
    while not (value := condition()):
        if time.monotonic() > deadline:
            what = what if isinstance(what, str) else what()
            raise AssertionError(
                f"gave up after {wait:.0f} s waiting for {what}: "
                f"{project.counts()}, heartbeat deadlines in "
                f"{project.deadlines()} s\n{project.logs()}"
            )
        time.sleep(0.1)
    return value


@pytest.mark.timeout(900)
@pytest.mark.xfail(
    strict=False,
    reason=(
        "Issue #16: lost one message in 1 of 6 CI runs on 2026-12-03: the worker "
        "was killed after RQ registered the job's execution as started and before "
        "the job recorded its worker, a state the test did not count and the "
        "recovery left in RQ's intermediate list. Both fixed the same day (see "
        "test_requeue_stale_on_rq_recovers_a_job_registered_but_never_prepared). "
        "Non-strict until it has passed in CI again: check XPASS, then remove."
    ),
)
def test_2000_messages_survive_a_down_server_and_a_killed_rq_worker(project, capsys):
    started = time.monotonic()
    enqueued = json.loads(
        project.run("-m", "tests.background_project.enqueue", str(MESSAGES))
    )
    assert len(set(enqueued)) == MESSAGES
    assert project.counts()["queued"] == MESSAGES
    server = SMTPTestServer(port=int(project.env["HYPERMAIL_CRASH_SMTP_PORT"]))
    received = Received(server)

    try:
        # 1. Workers start against the down server: each failure schedules its
        #    message again for later (RQ's scheduler, in worker-0, brings it back).
        project.start_worker("worker-0", scheduler=True)
        for n in range(1, WORKERS):
            project.start_worker(f"worker-{n}", scheduler=False)
        _wait_until(
            lambda: project.counts()["scheduled"] >= 100,
            "the workers to re-enqueue messages while the server is down",
            project,
        )
        assert server.messages == []

        # 2. The server comes up; after 300 deliveries worker-1 is killed.
        server.start()
        server.wait_for_messages(300, timeout=WAIT)
        victim = project.workers["worker-1"]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=WAIT)
        delivered_at_kill = received.distinct()
        left_running = project.running_on("worker-1")
        assert delivered_at_kill < MESSAGES, "the workers finished before the kill"

        # 3. Recovery: once the killed worker's heartbeat deadline has passed
        #    (up to 90 s), hypermail_requeue_stale puts its job back. If the
        #    kill landed between taking a job off the queue and starting it,
        #    the job is stuck in RQ's intermediate list: requeued after a minute.
        requeued: list[str] = []
        stuck = project.stuck()
        if stuck:  # A live worker passes through that state in milliseconds.
            time.sleep(1)
            stuck &= project.stuck()

        def recovered() -> bool:
            output = project.run("-m", "django", "hypermail_requeue_stale")
            requeued.extend(line.split()[1] for line in output.splitlines()[1:])
            return (set(left_running) | stuck) <= set(requeued)

        if left_running or stuck:
            # Up to 90 s for the heartbeat deadline, and for a job the worker
            # never prepared, a minute more in the intermediate list.
            _wait_until(
                recovered,
                "the killed worker's job to be requeued",
                project,
                wait=WAIT + 120,
            )

        def done() -> bool:
            if received.distinct() < MESSAGES:
                return False
            counts = project.counts()
            waiting = ("queued", "intermediate", "scheduled", "started")
            return not any(counts[name] for name in waiting)

        _wait_until(
            done,
            lambda: (
                "every message to be delivered (missing: "
                f"{sorted(set(enqueued) - set(received.ids()))[:5]}..., requeued "
                f"{requeued}, left running {left_running}, stuck {stuck})"
            ),
            project,
        )
        final = project.counts()
    finally:
        project.close()
        server.stop()

    counts = collections.Counter(received.ids())
    assert set(counts) == set(enqueued), "a message was lost, or an unknown one sent"
    assert final["failed"] == 0, project.logs()
    duplicates = {mid: n - 1 for mid, n in counts.items() if n > 1}
    unexplained = set(duplicates) - set(left_running.values())
    assert not unexplained, f"duplicates not caused by the kill: {unexplained}"
    if duplicates:
        why = (
            f"worker-1 was killed after the server accepted "
            f"{', '.join(sorted(duplicates))} and before RQ marked its job "
            "finished; hypermail_requeue_stale put the job back"
        )
    else:
        why = (
            "the kill did not land between the server accepting a message and "
            "RQ marking its job finished, so nothing was sent twice"
        )
    summary = (
        f"RQ crash test: {len(counts)}/{MESSAGES} delivered by {WORKERS} RQ "
        f"workers, {sum(duplicates.values())} duplicate(s) (at-least-once: {why}); "
        f"{delivered_at_kill} delivered before the SIGKILL, "
        f"{len(left_running)} job(s) left started and requeued, "
        f"{len(stuck)} taken off the queue but never started and requeued, "
        f"{counts.total()} SMTP deliveries in {time.monotonic() - started:.1f} s"
    )
    with capsys.disabled():
        print(f"\n{summary}")


def test_requeue_stale_on_rq_touches_only_abandoned_email_jobs(project):
    """What a killed worker leaves: an email job started with a heartbeat
    deadline long past, and one that RQ's maintenance already failed as
    abandoned. Beside them, an email job failed for a reason of its own and
    another app's abandoned job: neither is touched."""
    project.run("-m", "tests.background_project.enqueue", "4")
    queue = project.queue
    started = rq.registry.StartedJobRegistry(queue=queue)
    failed = rq.registry.FailedJobRegistry(queue=queue)
    dead, abandoned, refused, waiting = (queue.fetch_job(i) for i in queue.job_ids)
    other = queue.enqueue("os.getpid")
    past = time.time() - 60
    with project.connection.pipeline() as pipe:
        for job in (dead, other):
            queue.remove(job, pipeline=pipe)
            job.set_status(rq.job.JobStatus.STARTED, pipeline=pipe)
            pipe.zadd(started.key, {f"{job.id}:execution-1": past})
        for job, why in (
            (abandoned, "Moved to FailedJobRegistry, due to AbandonedJobError"),
            (refused, "SendError: 550 5.1.1 no such user"),
        ):
            queue.remove(job, pipeline=pipe)
            job.set_status(rq.job.JobStatus.FAILED, pipeline=pipe)
            job._handle_failure(why, pipe)
        pipe.execute()

    dry = project.run("-m", "django", "hypermail_requeue_stale", "--dry-run")
    assert "Would requeue 2 stale email task(s)." in dry
    # (zcard: RQ's own count() would clean the registry up first.)
    zcard = project.connection.zcard
    assert zcard(started.key) == 2 and zcard(failed.key) == 2

    output = project.run("-m", "django", "hypermail_requeue_stale")
    assert "Requeued 2 stale email task(s)." in output
    assert {line.split()[1] for line in output.splitlines()[1:]} == {
        dead.id,
        abandoned.id,
    }
    assert set(queue.job_ids) == {waiting.id, dead.id, abandoned.id}
    # RQ's own verdict on the other app's job: failed as abandoned, not requeued.
    assert set(failed.get_job_ids()) == {refused.id, other.id}
    assert zcard(started.key) == 0


def test_requeue_stale_on_rq_recovers_a_job_taken_and_never_started(project):
    """What a worker killed between taking a job off the queue (RQ moves it to
    the queue's intermediate list) and registering it as started leaves: a job
    in no registry. The first run only marks it, as a live worker holds a job
    there for milliseconds; a minute after that mark it is requeued, at the
    front. Another app's job stuck the same way is left to RQ's maintenance."""
    project.run("-m", "tests.background_project.enqueue", "2")
    queue = project.queue
    intermediate = queue.intermediate_queue
    email, waiting = (queue.fetch_job(i) for i in queue.job_ids)
    other = queue.enqueue("os.getpid")
    with project.connection.pipeline() as pipe:
        for job in (email, other):  # What a worker's BLMOVE does.
            pipe.lrem(queue.key, 1, job.id)
            pipe.rpush(intermediate.key, job.id)
        pipe.execute()
    assert project.stuck() == {email.id, other.id}

    assert "Requeued 0 stale email task(s)." in project.run(
        "-m", "django", "hypermail_requeue_stale"
    )
    dry = project.run("-m", "django", "hypermail_requeue_stale", "--dry-run")
    assert "Would requeue 0 stale email task(s)." in dry
    a_minute_ago = time.time() - 61
    for job in (email, other):
        first_seen = intermediate.get_first_seen_key(job.id)
        assert project.connection.exists(first_seen)
        project.connection.set(first_seen, a_minute_ago)

    dry = project.run("-m", "django", "hypermail_requeue_stale", "--dry-run")
    assert "Would requeue 1 stale email task(s)." in dry
    assert project.stuck() == {email.id, other.id}
    output = project.run("-m", "django", "hypermail_requeue_stale")
    assert "Requeued 1 stale email task(s)." in output
    assert [line.split()[1] for line in output.splitlines()[1:]] == [email.id]
    assert queue.job_ids == [email.id, waiting.id]
    assert project.stuck() == {other.id}
    assert not project.connection.exists(intermediate.get_first_seen_key(email.id))


def test_requeue_stale_on_rq_recovers_a_job_registered_but_never_prepared(project):
    """What a worker killed after registering a job's execution as started,
    but before the job records its worker and status, leaves: the job in the
    intermediate list and an execution in the started registry, its status
    still queued. Once the heartbeat deadline has passed, RQ 2.x's cleanup
    fails it as abandoned, and the first run requeues it. RQ 3's cleanup drops
    the entry without failing the job (it was never started); the job is then
    one taken and never started, requeued a minute after it is first seen."""
    project.run("-m", "tests.background_project.enqueue", "1")
    queue = project.queue
    (email,) = (queue.fetch_job(i) for i in queue.job_ids)
    intermediate = queue.intermediate_queue
    started = rq.registry.StartedJobRegistry(queue=queue)
    with project.connection.pipeline() as pipe:
        pipe.lrem(queue.key, 1, email.id)
        pipe.rpush(intermediate.key, email.id)
        pipe.zadd(started.key, {f"{email.id}:execution-1": time.time() - 60})
        pipe.execute()
    assert email.get_status() == rq.job.JobStatus.QUEUED
    assert project.stuck() == set()  # Started, as far as the registry says.

    output = project.run("-m", "django", "hypermail_requeue_stale")
    assert project.connection.zcard(started.key) == 0
    if int(rq.__version__.split(".")[0]) < 3:
        assert "Requeued 1 stale email task(s)." in output
    else:
        assert "Requeued 0 stale email task(s)." in output
        assert project.stuck() == {email.id}
        first_seen = intermediate.get_first_seen_key(email.id)
        assert project.connection.exists(first_seen)
        project.connection.set(first_seen, time.time() - 61)
        output = project.run("-m", "django", "hypermail_requeue_stale")
        assert "Requeued 1 stale email task(s)." in output
    assert [line.split()[1] for line in output.splitlines()[1:]] == [email.id]
    assert queue.job_ids == [email.id]
    assert project.stuck() == set()
