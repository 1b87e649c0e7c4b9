"""Per-call latency: Django's SMTP backend against FluxMailBackend.

Each ``send_mail()``-style call builds a new backend instance and sends one
message, as Django does, so Django's backend pays for a new connection (TCP,
EHLO, STARTTLS with a new ``SSLContext``, AUTH, QUIT) every time while ours
reuses a pooled one. Both run in the same process, interleaved call by call,
against the same SMTP server running in another process.

    .venv/bin/python -m benchmarks.per_call [--calls 1000] [--far-calls 100]

Scenarios, all with STARTTLS+AUTH but the last: on loopback; with a server
that waits 20 ms before every reply (the issue's model of a server in another
data centre); with 20 ms per network round trip instead (the first reply to each
flight of client data waits, replies to pipelined commands follow it); plain
SMTP on loopback. Each runs against a server offering PIPELINING and CHUNKING,
as real relays (Postfix, Exchange, Gmail) do, and, for comparison, against bare
aiosmtpd, which offers neither.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import django
from django.conf import settings

from benchmarks._server import smtp_server_process

USER, PASSWORD = "bench", "bench-password"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--far-calls", type=int, default=100)
    args = parser.parse_args()

    warnings.simplefilter("ignore")  # Django 6.1 deprecates direct construction.
    settings.configure(DEFAULT_FROM_EMAIL="bench@example.com")
    django.setup()

    print(
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}"
    )
    tls = ("--starttls", f"--auth={USER}:{PASSWORD}")
    # What real relays (Postfix, Exchange, Gmail) offer and aiosmtpd does not.
    relay = ("--pipelining", "--chunking")
    rows = [
        run("STARTTLS+AUTH loopback, PIPELINING+CHUNKING", args.calls, *tls, *relay),
        run("STARTTLS+AUTH loopback, bare aiosmtpd", args.calls, *tls),
        run(
            "20 ms per reply, PIPELINING+CHUNKING",
            args.far_calls,
            *tls,
            *relay,
            "--reply-delay=0.02",
        ),
        run(
            "20 ms per reply, bare aiosmtpd", args.far_calls, *tls, "--reply-delay=0.02"
        ),
        run(
            "20 ms per round trip, PIPELINING+CHUNKING",
            args.far_calls,
            *tls,
            *relay,
            "--round-trip-delay=0.02",
        ),
        run("plain loopback, bare aiosmtpd", args.calls),
    ]
    print()
    print(f"{'scenario':44} {'calls':>5} {'backend':8} {'p50 ms':>8} {'p95 ms':>8}")
    for name, calls, results in rows:
        for backend, (p50, p95) in results.items():
            print(f"{name:44} {calls:>5} {backend:8} {p50:8.2f} {p95:8.2f}")
        (d50, d95), (o50, o95) = results["django"], results["ours"]
        print(
            f"{'':44} {'':>5} {'ratio':8} {d50 / o50:7.1f}x {d95 / o95:7.1f}x"
            "  (Django / ours: higher means we are faster)"
        )


def run(name: str, calls: int, *server_args: str) -> tuple[str, int, dict[str, Any]]:
    from django.core.mail.backends.smtp import EmailBackend as DjangoBackend

    from hypermail_django.backends import FluxMailBackend
    from hypermail_django.transport import close_all_pools

    with smtp_server_process(*server_args) as server:
        tls = "--starttls" in server_args
        if tls:
            os.environ["SSL_CERT_FILE"] = server["ca_file"]
        options = {
            "host": server["host"],
            "port": server["port"],
            "use_tls": tls,
            "username": USER if tls else "",
            "password": PASSWORD if tls else "",
            "timeout": 30,
        }
        backends: dict[str, Callable[[], Any]] = {
            "django": lambda: DjangoBackend(**options),
            "ours": lambda: FluxMailBackend(**options),
        }
        timings: dict[str, list[float]] = {name: [] for name in backends}
        warmup = min(20, calls)
        for index in range(warmup + calls):
            order = list(backends) if index % 2 else list(reversed(backends))
            for backend_name in order:
                elapsed = send_one(backends[backend_name], index)
                if index >= warmup:
                    timings[backend_name].append(elapsed)
        close_all_pools()
    print(f"  {name}: done")
    return name, calls, {key: percentiles(values) for key, values in timings.items()}


def send_one(make_backend: Callable[[], Any], index: int) -> float:
    from django.core.mail import EmailMessage

    start = time.perf_counter()
    message = EmailMessage(
        f"Receipt {index}", "Thanks for your order.", to=["a@example.com"]
    )
    sent = make_backend().send_messages([message])
    elapsed = (time.perf_counter() - start) * 1000
    assert sent == 1
    return elapsed


def percentiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return statistics.median(values), cuts[94]


if __name__ == "__main__":
    main()
