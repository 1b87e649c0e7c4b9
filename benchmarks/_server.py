"""An SMTP server in its own process, so it never competes with the client's GIL.

``python -m benchmarks._server [--starttls] [--auth USER:PASS] [--reply-delay S]
[--pipelining] [--chunking] [--round-trip-delay S]``
prints one JSON line ``{"host", "port", "ca_file"}`` and serves until stdin closes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypermail_django.testing import SMTPTestServer, TLSCertificates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--auth", default=None, help="USER:PASSWORD")
    parser.add_argument("--reply-delay", type=float, default=0.0)
    parser.add_argument("--pipelining", action="store_true")
    parser.add_argument("--chunking", action="store_true")
    parser.add_argument("--round-trip-delay", type=float, default=0.0)
    args = parser.parse_args()
    certs = TLSCertificates() if args.starttls else None
    auth = dict([args.auth.split(":", 1)]) if args.auth else None
    with SMTPTestServer(
        starttls=args.starttls,
        certs=certs,
        auth=auth,
        reply_delay=args.reply_delay,
        pipelining=args.pipelining,
        chunking=args.chunking,
        round_trip_delay=args.round_trip_delay,
    ) as server:
        info = {
            "host": server.host,
            "port": server.port,
            "ca_file": certs.ca_file if certs else None,
        }
        print(json.dumps(info), flush=True)
        sys.stdin.read()  # until the parent closes our stdin


@contextmanager
def smtp_server_process(*args: str) -> Iterator[dict[str, Any]]:
    """Start the server process with ``args``; yield its host/port/ca_file."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._server", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
