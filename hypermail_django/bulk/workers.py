"""Whether ``send_bulk`` may start worker processes here, and how many.

Workers start from ``forkserver``, which imports the main script again in each
of them (as ``__mp_main__``). A script that calls ``send_bulk`` outside an
``if __name__ == "__main__":`` block would therefore run again in every
worker, which multiprocessing stops with a page of "bootstrapping phase"
tracebacks and a ``BrokenProcessPool``. So before starting any, we look: a
frozen application, a platform without ``forkserver``, or a call that is not
under a main guard means serializing in this process, with one warning that
says why and what to change. A pool that still fails to start (a sandbox that
forbids ``fork``) is caught the same way, at run time.

How many: one worker per CPU this process may use -- its affinity mask
(``taskset``, ``cpuset``) and its cgroup v2 CPU quota (``cpu.max``, what
``docker run --cpus`` and Kubernetes CPU limits set) -- and none with a single
CPU, where workers would only share it with the process that sends.
"""

from __future__ import annotations

import ast
import functools
import math
import multiprocessing
import os
import sys
import warnings
from pathlib import Path
from types import FrameType

HOW_TO_GET_WORKERS = (
    "To serialize on every core, call send_bulk from code under "
    "'if __name__ == \"__main__\":' (or from manage.py, a management command "
    "or a task worker), or pass processes=0 to serialize here without this "
    "warning."
)


class BulkWorkersWarning(RuntimeWarning):
    """``send_bulk`` could not use worker processes and serializes in-process."""


_warned: set[str] = set()


def warn_no_workers(reason: str, stacklevel: int = 2) -> None:
    """One warning per reason and process: why there are no workers, and how
    to get them."""
    if reason in _warned:
        return
    _warned.add(reason)
    warnings.warn(
        f"send_bulk serializes in this process: {reason}. {HOW_TO_GET_WORKERS}",
        BulkWorkersWarning,
        stacklevel=stacklevel + 1,
    )


def in_worker_bootstrap() -> bool:
    """True while multiprocessing imports the main script in a new process."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def why_no_workers() -> str | None:
    """Why worker processes cannot start here, or None when they can."""
    if getattr(sys, "frozen", False):
        return "this is a frozen application, whose executable cannot start them"
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "this platform has no 'forkserver' start method for worker processes"
    unguarded = unguarded_main_call()
    if unguarded:
        return (
            f"{unguarded} calls it outside an 'if __name__ == \"__main__\":' "
            "block, so every worker process would run that script again"
        )
    return None


def unguarded_main_call(frame: FrameType | None = None) -> str | None:
    """``path:line`` of the main script's top-level statement that led here, if
    that statement is not under a main guard (workers would run it again)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not path:
        return None  # -c, a REPL: multiprocessing does not import it again.
    frame = frame or sys._getframe(1)
    while frame is not None:
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            break
        frame = frame.f_back
    if frame is None:
        return None  # Not called from the script's top level (a thread...).
    line = frame.f_lineno
    return None if _guarded(path, line) else f"{path}:{line}"


@functools.lru_cache(maxsize=64)
def _guarded(path: str, line: int) -> bool:
    """Whether ``line`` of the script at ``path`` is under a main guard (True
    when its source cannot be read: the run-time check still applies).
    Remembered: a task worker may call send_bulk many times."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return True
    return any(
        isinstance(node, ast.If)
        and _is_main_guard(node.test)
        and node.lineno <= line <= (node.end_lineno or node.lineno)
        for node in ast.walk(tree)
    )


def _is_main_guard(test: ast.expr) -> bool:
    if not (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
    ):
        return False
    sides = [test.left, test.comparators[0]]
    names = {s.id for s in sides if isinstance(s, ast.Name)}
    values = {s.value for s in sides if isinstance(s, ast.Constant)}
    return names == {"__name__"} and values == {"__main__"}


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity mask, within its cgroup's
    CPU quota (rounded up: a quota of 1.5 CPUs lets two workers share it)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def cgroup_cpu_quota(
    root: Path = Path("/sys/fs/cgroup"), membership: Path = Path("/proc/self/cgroup")
) -> float | None:
    """The tightest cgroup v2 ``cpu.max`` quota over this process's cgroup and
    its parents, in CPUs; None when there is none (or no cgroup v2)."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    relative = next((x[3:] for x in lines if x.startswith("0::")), None)
    if relative is None:
        return None
    tightest: float | None = None
    directory = (root / relative.lstrip("/")).resolve()
    while True:
        quota = _read_cpu_max(directory / "cpu.max")
        if quota is not None and (tightest is None or quota < tightest):
            tightest = quota
        if directory == root or root not in directory.parents:
            return tightest
        directory = directory.parent


def _read_cpu_max(path: Path) -> float | None:
    try:
        limit, period = path.read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        return None
