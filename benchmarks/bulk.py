"""Bulk throughput: Django's ``send_messages`` on one connection vs ``send_bulk``.

    .venv/bin/python -m benchmarks.bulk [--messages 10000] [--rounds 3]
        [--workload digest,transactional] [--mode workers,one-cpu]

Both send the same distinct ~4 KB messages to postfix's ``smtp-sink``, in the
same run, alternating, and the messages are built inside the timed part for
both. Two workloads: ``digest`` (a text part and an HTML list) and
``transactional`` (a plain-text receipt and a ~1.9 KB single-line HTML table
with inline styles). Two modes: ``workers`` (every CPU; ``send_bulk`` with its
worker processes) and ``one-cpu`` (the same run again under ``taskset -c 0``,
for Django and us alike: ``send_bulk`` then serializes in its own process, as
in a one-vCPU container). ``smtp-source -d`` (postfix's C load generator, one
connection) gives the ceiling of the sink itself.

Besides msg/s, each run reports the client's CPU per message: this process,
plus ``send_bulk``'s worker processes (read from ``/proc``, so on Linux only).
On a shared machine wall-clock rates move with the load; CPU per message
barely does, so it is what tells whether a change made sending cheaper.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

from benchmarks._sink import ensure_postfix_tools, smtp_sink, smtp_source_rate

if TYPE_CHECKING:
    from django.core.mail import EmailMultiAlternatives


def make_messages(count: int, salt: str) -> Iterator[EmailMultiAlternatives]:
    from django.core.mail import EmailMultiAlternatives

    for n in range(count):
        name = f"Reader {salt}-{n}"
        items = "".join(
            f"<li>Story {n}.{i}: something happened today</li>" for i in range(28)
        )
        text = (
            f"Hello {name},\n\n"
            + "".join(f"* Story {n}.{i}: something happened today\n" for i in range(28))
            + "\nSee you next week.\n" * 8
        )
        html = (
            f"<html><body><h1>Hello {name}</h1><ul>{items}</ul>"
            + "<p>See you next week.</p>" * 40
            + "</body></html>"
        )
        message = EmailMultiAlternatives(
            f"Your digest #{n} ({salt})",
            text,
            "news@example.com",
            [f"reader{n}@example.com"],
        )
        message.attach_alternative(html, "text/html")
        yield message


def make_receipts(count: int, salt: str) -> Iterator[EmailMultiAlternatives]:
    """Transactional mail: an order receipt, as text and as one long line of
    HTML table with inline styles (what template builders produce)."""
    from django.core.mail import EmailMultiAlternatives

    cell = "padding:6px 12px;border-bottom:1px solid #e5e5e5;color:#333"
    for n in range(count):
        name = f"Customer {salt}-{n}"
        items = [(f"Item {n}-{i}", i + 1, 9.5 * (i + 1)) for i in range(5)]
        total = sum(price for _, _, price in items)
        text = (
            f"Hello {name},\n\nThank you for your order #{salt}-{n}.\n\n"
            + "".join(
                f"  {label:<20} x{qty}  {price:8.2f} EUR\n"
                for label, qty, price in items
            )
            + f"\n  Total {total:.2f} EUR\n\n"
            + "Your receipt is attached as HTML. Questions? Reply to this email.\n"
            + "Shop Example, 1 Example Street, 12345 Example City\n" * 22
        )
        rows = "".join(
            f'<tr><td style="{cell}">{label}</td>'
            f'<td style="{cell};text-align:right">{qty}</td>'
            f'<td style="{cell};text-align:right">{price:.2f}&nbsp;EUR</td></tr>'
            for label, qty, price in items
        )
        html = (
            '<html><body style="margin:0;background:#f6f6f6">'
            '<table style="width:100%;max-width:600px;border-collapse:collapse">'
            f'<tr><th style="{cell};text-align:left">Order #{salt}-{n}</th></tr>'
            f'{rows}<tr><td style="{cell};font-weight:bold">Total</td>'
            f'<td></td><td style="{cell};text-align:right">{total:.2f}&nbsp;EUR'
            "</td></tr></table></body></html>"
        )
        message = EmailMultiAlternatives(
            f"Your receipt for order #{n} ({salt})",
            text,
            "shop@example.com",
            [f"customer{n}@example.com"],
        )
        message.attach_alternative(html, "text/html")
        yield message


WORKLOADS = {"digest": make_messages, "transactional": make_receipts}


def client_cpu_seconds() -> float:
    """CPU time used so far by this process and by ``send_bulk``'s workers."""
    from hypermail_django.bulk.preparation import executors

    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    ticks = os.sysconf("SC_CLK_TCK")
    for pool in executors._pools.values():
        for pid in pool._processes or {}:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workload", default="digest,transactional")
    parser.add_argument("--mode", default="workers,one-cpu")
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workloads = args.workload.split(",")
    modes = args.mode.split(",")
    warnings.simplefilter("ignore")
    if args.port:  # The one-cpu half, under taskset, sending to our sink.
        run_mode(args, workloads, "one-cpu", args.port)
        return
    ensure_postfix_tools()
    # The sink runs on every CPU: in one-cpu mode only the client is pinned.
    with smtp_sink() as port:
        if "workers" in modes:
            run_mode(args, workloads, "workers", port)
        if "one-cpu" in modes:
            if not shutil.which("taskset"):
                print("one-cpu mode needs taskset (util-linux)")
                return
            sys.stdout.flush()
            command = [sys.executable, "-m", "benchmarks.bulk", "--port", str(port)]
            command += ["--messages", str(args.messages), "--rounds", str(args.rounds)]
            command += ["--workload", args.workload]
            subprocess.run(["taskset", "-c", "0", *command], check=True)


def run_mode(
    args: argparse.Namespace, workloads: list[str], mode: str, port: int
) -> None:
    os.environ["BENCH_SMTP_PORT"] = str(port)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    import django

    django.setup()
    from django.core.mail.backends.smtp import EmailBackend as DjangoBackend

    from hypermail_django.bulk import send_bulk
    from hypermail_django.bulk.preparation import worker_count
    from hypermail_django.bulk.workers import usable_cpus
    from hypermail_django.compat import MAILERS_SUPPORTED

    print(
        f"== mode {mode}: Python {platform.python_version()}, Django "
        f"{django.get_version()}, {usable_cpus()} usable of {os.cpu_count()} "
        f"CPUs, send_bulk workers: {worker_count(None)}; {args.messages} "
        f"messages per run, {args.rounds} rounds"
    )
    for workload in workloads:
        make = WORKLOADS[workload]
        sample = next(make(1, "size"))
        size = len(sample.message().as_bytes())

        def django_run(salt: str, make=make) -> None:
            # Django 6.1 with MAILERS reads no EMAIL_* setting: a backend
            # made with an alias takes its options as a mailer would.
            as_mailer = {"alias": "django"} if MAILERS_SUPPORTED else {}
            backend = DjangoBackend(host="127.0.0.1", port=port, **as_mailer)
            sent = backend.send_messages(list(make(args.messages, salt)))
            assert sent == args.messages

        def ours_run(salt: str, make=make) -> None:
            result = send_bulk(make(args.messages, salt), progress=False)
            assert result["sent"] == args.messages, result

        send_bulk(make(200, "warmup"), progress=False)  # start the workers
        rates: dict[str, list[float]] = {"django": [], "ours": []}
        cpu: dict[str, list[float]] = {"django": [], "ours": []}
        for round_ in range(args.rounds):
            runs = [("django", django_run), ("ours", ours_run)]
            for name, run in runs if round_ % 2 == 0 else reversed(runs):
                cpu_start, start = client_cpu_seconds(), time.perf_counter()
                run(f"{name}{round_}")
                elapsed = time.perf_counter() - start
                used = (client_cpu_seconds() - cpu_start) / args.messages * 1000
                rates[name].append(args.messages / elapsed)
                cpu[name].append(used)
                print(
                    f"  {workload} round {round_ + 1}: {name:6} "
                    f"{rates[name][-1]:8.0f} msg/s {used:6.2f} ms client CPU/msg"
                )
        ceiling = smtp_source_rate(port, args.messages, size)
        report(workload, mode, size, rates, cpu, ceiling)


def report(
    workload: str,
    mode: str,
    size: int,
    rates: dict[str, list[float]],
    cpu: dict[str, list[float]],
    ceiling: float,
) -> None:
    django_rate = statistics.median(rates["django"])
    ours_rate = statistics.median(rates["ours"])
    print(f"\n{workload} ({size} bytes), {mode}:")
    print(f"{'sender':40} {'msg/s (median)':>15} {'client CPU ms/msg':>18}")
    for label, name in [
        ("Django send_messages, one connection", "django"),
        ("hypermail send_bulk", "ours"),
    ]:
        rate, used = statistics.median(rates[name]), statistics.median(cpu[name])
        print(f"{label:40} {rate:15.0f} {used:18.2f}")
    print(f"{'smtp-source -d (C, one connection)':40} {ceiling:15.0f}")
    print(
        f"ratio ours / Django ({workload}, {mode}): "
        f"{ours_rate / django_rate:.2f}x; ours / smtp-source: "
        f"{ours_rate / ceiling:.2f}\n",
        flush=True,
    )


if __name__ == "__main__":
    main()
