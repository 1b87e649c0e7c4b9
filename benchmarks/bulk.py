"""Bulk throughput: Django's ``send_messages`` on one connection vs ``send_bulk``.

    .venv/bin/python -m benchmarks.bulk [--messages 10000] [--rounds 3]

Both send the same 10,000 distinct ~4 KB messages (a text part and an HTML
alternative) to postfix's ``smtp-sink``, in the same run, alternating, and the
messages are built inside the timed part for both. ``smtp-source -d`` (postfix's
C load generator, one connection) gives the ceiling of the sink itself.

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
import statistics
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
    args = parser.parse_args()
    ensure_postfix_tools()
    warnings.simplefilter("ignore")

    with smtp_sink() as port:
        os.environ["BENCH_SMTP_PORT"] = str(port)
        os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
        import django

        django.setup()
        from django.core.mail.backends.smtp import EmailBackend as DjangoBackend

        from hypermail_django.bulk import send_bulk
        from hypermail_django.compat import MAILERS_SUPPORTED

        sample = next(make_messages(1, "size"))
        size = len(sample.message().as_bytes())
        print(
            f"Python {platform.python_version()}, Django {django.get_version()}, "
            f"{os.cpu_count()} CPUs; {args.messages} messages of {size} bytes"
        )

        def django_run(salt: str) -> None:
            # Django 6.1 with MAILERS reads no EMAIL_* setting: a backend made
            # with an alias takes its options as a mailer would (no timeout).
            as_mailer = {"alias": "django"} if MAILERS_SUPPORTED else {}
            backend = DjangoBackend(host="127.0.0.1", port=port, **as_mailer)
            sent = backend.send_messages(list(make_messages(args.messages, salt)))
            assert sent == args.messages

        def ours_run(salt: str) -> None:
            result = send_bulk(make_messages(args.messages, salt), progress=False)
            assert result["sent"] == args.messages, result

        send_bulk(make_messages(200, "warmup"), progress=False)  # start the workers
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
                    f"  round {round_ + 1}: {name:6} {rates[name][-1]:8.0f} msg/s"
                    f" {used:6.2f} ms client CPU/msg"
                )
        ceiling = smtp_source_rate(port, args.messages, size)

    django_rate = statistics.median(rates["django"])
    ours_rate = statistics.median(rates["ours"])
    django_cpu = statistics.median(cpu["django"])
    ours_cpu = statistics.median(cpu["ours"])
    print()
    print(f"{'sender':40} {'msg/s (median)':>15} {'client CPU ms/msg':>18}")
    for label, rate, used in [
        ("Django send_messages, one connection", django_rate, django_cpu),
        ("hypermail send_bulk", ours_rate, ours_cpu),
    ]:
        print(f"{label:40} {rate:15.0f} {used:18.2f}")
    print(f"{'smtp-source -d (C, one connection)':40} {ceiling:15.0f}")
    print(
        f"ratio ours / Django: {ours_rate / django_rate:.2f}x; "
        f"ours / smtp-source: {ours_rate / ceiling:.2f}"
    )


if __name__ == "__main__":
    main()
