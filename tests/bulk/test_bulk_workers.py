"""``send_bulk``'s worker processes: scripts without a main guard, and CPUs.

Real scripts run with ``python script.py`` in a subprocess, against the
in-process SMTP server: whatever happens to the workers, every message arrives
once, and the script's output says why in one warning, never a traceback.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hypermail_django.bulk import workers

from ..paths import ROOT

SETTINGS = """
import os
SECRET_KEY = "not-secret"
INSTALLED_APPS = []
USE_TZ = True
EMAIL_BACKEND = "hypermail_django.backends.FluxMailBackend"
EMAIL_HOST = "127.0.0.1"
EMAIL_PORT = int(os.environ["TEST_SMTP_PORT"])
"""

HEAD = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bulk_script_settings")
import multiprocessing
import django
django.setup()
from django.core.mail import EmailMessage
from hypermail_django.bulk import preparation, send_bulk
{patch}
print("top level ran in", os.getpid(), flush=True)
MESSAGES = [
    EmailMessage(f"S {{n}}", "body", "a@example.com", [f"r{{n}}@example.com"])
    for n in range(60)
]
"""

UNGUARDED = (
    HEAD
    + """
result = send_bulk(MESSAGES, processes=2, progress=False)
print("sent", result["sent"], "pools", len(preparation.executors._pools))
"""
)

GUARDED = (
    HEAD
    + """
def main():
    result = send_bulk(MESSAGES, processes=2, progress=False)
    print("sent", result["sent"], "pools", len(preparation.executors._pools))

if "__main__" == __name__:
    main()
"""
)


def run_script(tmp_path: Path, port: int, source: str, *prefix: str):
    (tmp_path / "bulk_script_settings.py").write_text(SETTINGS)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
        "TEST_SMTP_PORT": str(port),
        "PYTHONWARNINGS": "default",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [*prefix, sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _delivered_once(server, count: int) -> None:
    subjects = sorted(m.message()["Subject"] for m in server.wait_for_messages(count))
    assert subjects == sorted(f"S {n}" for n in range(count))


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_a_script_without_main_guard_serializes_here_with_one_warning(
    server, tmp_path, start_method
):
    # Whatever start method the script chose for itself, ours stays forkserver,
    # which imports the script again in every worker just as spawn would.
    patch = f"multiprocessing.set_start_method({start_method!r})"
    done = run_script(tmp_path, server.port, UNGUARDED.format(patch=patch))

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("BulkWorkersWarning") == 1
    assert "outside an 'if __name__ == \"__main__\":' block" in done.stderr
    assert f"{tmp_path / 'script.py'}:" in done.stderr
    assert "processes=0" in done.stderr
    # No worker ran the script again; no pool was started.
    assert done.stdout.count("top level ran in") == 1
    assert "sent 60 pools 0" in done.stdout
    _delivered_once(server, 60)


def test_a_guarded_script_uses_workers_without_warning(server, tmp_path):
    done = run_script(tmp_path, server.port, GUARDED.format(patch=""))

    assert done.returncode == 0, done.stderr
    assert "BulkWorkersWarning" not in done.stderr
    assert "Traceback" not in done.stderr
    assert "sent 60 pools 1" in done.stdout
    _delivered_once(server, 60)


def test_workers_that_cannot_start_fall_back_at_run_time(server, tmp_path):
    """When the look at the source misses (here: switched off), the workers
    that run the script again stop quietly and the batch is serialized here."""
    patch = "preparation.why_no_workers = lambda: None"
    done = run_script(tmp_path, server.port, UNGUARDED.format(patch=patch))

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("BulkWorkersWarning") == 1
    assert "worker processes could not start" in done.stderr
    assert "sent 60 pools 0" in done.stdout
    _delivered_once(server, 60)


@pytest.mark.parametrize(
    "test, guard",
    [
        ('__name__ == "__main__"', True),
        ("'__main__' == __name__", True),
        ('__name__ != "__main__"', False),
        ('name == "__main__"', False),
    ],
)
def test_main_guards_are_recognised(test, guard):
    assert workers._is_main_guard(ast.parse(test, mode="eval").body) is guard


CPU_PROBE = "from hypermail_django.bulk import workers;print(workers.usable_cpus())"


@pytest.mark.skipif(not shutil.which("taskset"), reason="needs util-linux taskset")
def test_a_process_pinned_to_one_cpu_serializes_in_process():
    probe = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings';"
        "import django; django.setup();"
        "from hypermail_django.bulk import preparation, workers;"
        "print(workers.usable_cpus(), preparation.worker_count(None))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    pinned = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert pinned.stdout.split() == ["1", "0"]
    if len(os.sched_getaffinity(0)) > 1 and (workers.cgroup_cpu_quota() or 2) >= 2:
        free = subprocess.run(
            [sys.executable, "-c", probe],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        cpus = str(workers.usable_cpus())
        assert free.stdout.split() == [cpus, cpus]


@pytest.mark.parametrize(
    "quotas, expected",
    [
        ({}, None),
        ({"leaf": "max 100000"}, None),
        ({"leaf": "150000 100000"}, 1.5),
        ({"leaf": "max 100000", "root": "50000 100000"}, 0.5),
        ({"leaf": "300000 100000", "pod": "200000 100000"}, 2.0),
    ],
)
def test_the_tightest_cgroup_quota_counts(tmp_path, quotas, expected):
    """A cgroup v2 tree as Kubernetes lays it out: pod, then container."""
    root = tmp_path / "cgroup"
    leaf = root / "pod" / "leaf"
    leaf.mkdir(parents=True)
    places = {"leaf": leaf, "pod": root / "pod", "root": root}
    for where, value in quotas.items():
        (places[where] / "cpu.max").write_text(value + "\n")
    membership = tmp_path / "membership"
    membership.write_text("0::/pod/leaf\n")
    assert workers.cgroup_cpu_quota(root, membership) == expected


def test_no_cgroup_v2_means_no_quota(tmp_path):
    membership = tmp_path / "membership"
    membership.write_text("12:cpu,cpuacct:/docker/abc\n")
    assert workers.cgroup_cpu_quota(tmp_path, membership) is None
