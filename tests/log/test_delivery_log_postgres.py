"""The delivery-log tests again, on PostgreSQL (Debian's ``postgresql``).

A session fixture starts a throwaway cluster on 127.0.0.1; the log's test
modules run against it in a child pytest with ``tests.settings_postgres``
(pytest-django has one database configuration per run). Fails -- never
skips -- without the PostgreSQL programs or psycopg, so CI proves it ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ..paths import ROOT
from ..postgres import Cluster, binaries, cluster

MODULES = [
    "tests/log/test_delivery_log.py",
    "tests/log/test_delivery_log_background.py",
    "tests/log/test_delivery_log_admin.py",
    "tests/log/test_delivery_log_prune.py",
]


@pytest.fixture(scope="session")
def postgresql() -> Iterator[Cluster]:
    bin_dir = binaries()
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL is missing: these tests need Debian's postgresql package "
            "(apt-get install -y postgresql). They fail rather than skip so that "
            "CI proves they ran."
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail('psycopg is missing: pip install "hypermail-django[postgres]"')
    with cluster(bin_dir) as running:
        yield running


def test_the_delivery_log_tests_pass_on_postgresql(postgresql):
    env = {
        **os.environ,
        **postgresql.env(),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    child = subprocess.run(
        [sys.executable, "-m", "pytest", *MODULES, "-q", "-p", "no:cacheprovider",
         "--ds", "tests.settings_postgres", "-o", "addopts=-ra --strict-markers"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report = child.stdout[-4000:] + child.stderr[-2000:]
    assert child.returncode == 0, report
    assert " passed" in child.stdout and "skipped" not in child.stdout, report
    assert "postgresql" in _engine_used(env)


def _engine_used(env: dict[str, str]) -> str:
    """The engine the child's settings name (a guard against testing SQLite
    twice by mistake)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import tests.settings_postgres as s; "
         "print(s.DATABASES['default']['ENGINE'])"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return probe.stdout
