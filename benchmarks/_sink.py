"""postfix's ``smtp-sink`` (a fast C SMTP server) and ``smtp-source`` (its C load
generator), installed from Debian's ``postfix`` package when missing. The postfix
daemon itself is never started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager


def ensure_postfix_tools() -> None:
    if shutil.which("smtp-sink") and shutil.which("smtp-source"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("Installing postfix for smtp-sink/smtp-source (the daemon is not started)...")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postfix"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    # Some images start services on install; make sure no postfix daemon runs.
    subprocess.run(["postfix", "stop"], check=False, capture_output=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_sink() -> Iterator[int]:
    """Run ``smtp-sink`` on a free loopback port; yield the port."""
    port = free_port()
    process = subprocess.Popen(
        ["smtp-sink", "-u", "nobody", f"127.0.0.1:{port}", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def smtp_source_rate(port: int, count: int, size: int) -> float:
    """Messages per second ``smtp-source`` sends over ONE connection."""
    start = time.perf_counter()
    subprocess.run(
        [
            "smtp-source",
            "-d",
            "-s",
            "1",
            "-l",
            str(size),
            "-m",
            str(count),
            f"127.0.0.1:{port}",
        ],
        check=True,
    )
    return count / (time.perf_counter() - start)
