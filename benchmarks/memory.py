"""Peak memory of ``send_bulk`` over 100,000 and 10,000 streamed messages.

    .venv/bin/python -m benchmarks.memory [--sizes 10000 100000]

Each size runs in a fresh process that sends a generator of messages to
postfix's ``smtp-sink``; it reports the peak RSS of that process and of its
serializing worker processes (read from ``/proc`` before they exit).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import warnings

from benchmarks._sink import ensure_postfix_tools, smtp_sink


def _worker_peaks_kb() -> list[int]:
    from hypermail_django.bulk.preparation import executors

    peaks = []
    for pool in executors._pools.values():
        for process in pool._processes.values():
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]))
    return peaks


def measure(count: int) -> None:
    """In the child: send ``count`` messages, print peak RSS as JSON."""
    warnings.simplefilter("ignore")
    import django

    django.setup()
    from benchmarks.bulk import make_messages
    from hypermail_django.bulk import send_bulk

    start = time.perf_counter()
    result = send_bulk(make_messages(count, "mem"), progress=False)
    elapsed = time.perf_counter() - start
    assert result["sent"] == count, result
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "count": count,
                "seconds": elapsed,
                "parent_mb": peak_kb / 1024,
                "workers_mb": [kb / 1024 for kb in _worker_peaks_kb()],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.child)
        return
    ensure_postfix_tools()
    rows = []
    with smtp_sink() as port:
        env = {
            **os.environ,
            "BENCH_SMTP_PORT": str(port),
            "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
        }
        for size in args.sizes:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.memory", "--child", str(size)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    print(
        f"{'messages':>9} {'seconds':>8} {'parent peak MB':>15} {'worker peak MB':>15}"
    )
    for row in rows:
        workers = max(row["workers_mb"], default=0.0)
        parent = row["parent_mb"]
        print(f"{row['count']:>9} {row['seconds']:8.1f} {parent:15.1f} {workers:15.1f}")
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        print(
            f"parent peak ratio {last['count']} / {first['count']}: "
            f"{last['parent_mb'] / first['parent_mb']:.2f}x"
        )


if __name__ == "__main__":
    main()
