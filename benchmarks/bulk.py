"""Bulk throughput: Django's ``send_messages`` on one connection vs ``send_bulk``.

    .venv/bin/python -m benchmarks.bulk [--messages 10000] [--rounds 3]

Both send the same 10,000 distinct ~4 KB messages (a text part and an HTML
alternative) to postfix's ``smtp-sink``, in the same run, alternating, and the
messages are built inside the timed part for both. ``smtp-source -d`` (postfix's
C load generator, one connection) gives the ceiling of the sink itself.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Iterator

from benchmarks._sink import ensure_postfix_tools, smtp_sink, smtp_source_rate


def make_messages(count: int, salt: str) -> Iterator[object]:
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

        sample = next(make_messages(1, "size"))
        size = len(sample.message().as_bytes())
        print(
            f"Python {platform.python_version()}, Django {django.get_version()}, "
            f"{os.cpu_count()} CPUs; {args.messages} messages of {size} bytes"
        )

        def django_run(salt: str) -> float:
            start = time.perf_counter()
            backend = DjangoBackend(host="127.0.0.1", port=port)
            sent = backend.send_messages(list(make_messages(args.messages, salt)))
            assert sent == args.messages
            return args.messages / (time.perf_counter() - start)

        def ours_run(salt: str) -> float:
            start = time.perf_counter()
            result = send_bulk(make_messages(args.messages, salt), progress=False)
            assert result["sent"] == args.messages, result
            return args.messages / (time.perf_counter() - start)

        send_bulk(make_messages(200, "warmup"), progress=False)  # start the workers
        rates: dict[str, list[float]] = {"django": [], "ours": []}
        for round_ in range(args.rounds):
            runs = [("django", django_run), ("ours", ours_run)]
            for name, run in runs if round_ % 2 == 0 else reversed(runs):
                rate = run(f"{name}{round_}")
                rates[name].append(rate)
                print(f"  round {round_ + 1}: {name:6} {rate:8.0f} msg/s")
        ceiling = smtp_source_rate(port, args.messages, size)

    django_rate = statistics.median(rates["django"])
    ours_rate = statistics.median(rates["ours"])
    print()
    print(f"{'sender':40} {'msg/s (median)':>15}")
    print(f"{'Django send_messages, one connection':40} {django_rate:15.0f}")
    print(f"{'hypermail send_bulk':40} {ours_rate:15.0f}")
    print(f"{'smtp-source -d (C, one connection)':40} {ceiling:15.0f}")
    print(
        f"ratio ours / Django: {ours_rate / django_rate:.2f}x; "
        f"ours / smtp-source: {ours_rate / ceiling:.2f}"
    )


if __name__ == "__main__":
    main()
