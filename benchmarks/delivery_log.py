"""What the delivery log costs bulk sending, and how fast its admin search is.

    .venv/bin/python -m benchmarks.delivery_log [--messages 3000] [--rounds 3]
        [--rows 1000000]

1. ``send_bulk`` of the same ~4 KB messages to postfix's ``smtp-sink``, with
   the log off, on (``HYPERMAIL_LOG_KEEP = "headers"``) and on keeping whole
   messages (``"full"``), alternating, on a SQLite file in WAL mode. Reported:
   msg/s (median) and the cost of each against "off".
2. ``--rows`` deliveries (each with a recipient) generated in SQLite, then the
   admin's three searches -- exact recipient, exact Message-ID, subject prefix
   -- timed as the admin runs them (first page of 50), with SQLite's plan.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings

from benchmarks._sink import ensure_postfix_tools, smtp_sink
from benchmarks.bulk import make_messages


def _bulk(args: argparse.Namespace) -> None:
    from django.test import override_settings

    from hypermail_django.bulk import send_bulk
    from hypermail_django.log.models import Delivery

    modes = {
        "off": {"HYPERMAIL_LOG_ENABLED": False},
        "headers": {"HYPERMAIL_LOG_KEEP": "headers"},
        "full": {"HYPERMAIL_LOG_KEEP": "full"},
    }
    send_bulk(make_messages(200, "warmup"), progress=False)  # start the workers
    rates: dict[str, list[float]] = {name: [] for name in modes}
    for round_ in range(args.rounds):
        order = list(modes) if round_ % 2 == 0 else list(reversed(modes))
        for name in order:
            before = Delivery.objects.count()
            with override_settings(**modes[name]):
                start = time.perf_counter()
                result = send_bulk(
                    make_messages(args.messages, f"{name}{round_}"), progress=False
                )
                elapsed = time.perf_counter() - start
            assert result["sent"] == args.messages, result
            recorded = Delivery.objects.count() - before
            assert recorded == (0 if name == "off" else args.messages), recorded
            rates[name].append(args.messages / elapsed)
            print(f"  round {round_ + 1}: log {name:8} {rates[name][-1]:8.0f} msg/s")
    off = statistics.median(rates["off"])
    print()
    print(f"{'send_bulk, delivery log':30} {'msg/s (median)':>15} {'cost':>8}")
    for name in modes:
        rate = statistics.median(rates[name])
        cost = "-" if name == "off" else f"{(1 - rate / off) * 100:6.1f}%"
        print(f"{name:30} {rate:15.0f} {cost:>8}")


def _generate(rows: int) -> None:
    """``rows`` deliveries and recipients, written by SQLite itself."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM hypermail_log_recipient")
        cursor.execute("DELETE FROM hypermail_log_delivery")
        cursor.execute(
            """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT %s)
            INSERT INTO hypermail_log_delivery
                (message_id, mailer, via, subject, from_email, created_at, size,
                 attempts, status, error_code, error, headers)
            SELECT '<' || i || '.bench@example.com>', 'default', 'bulk',
                   'Your digest #' || i, 'news@example.com',
                   datetime('now', '-' || (i %% 30) || ' days'), 4096, 1,
                   CASE WHEN i %% 50 = 0 THEN 'failed' ELSE 'sent' END, '', '',
                   'Subject: Your digest #' || i
            FROM n
            """,
            [rows],
        )
        cursor.execute(
            """
            INSERT INTO hypermail_log_recipient
                (delivery_id, address, kind, status, code, reply, at)
            SELECT id, 'reader' || id || '@example.com', 'to', status, 250,
                   '2.0.0 Ok', created_at
            FROM hypermail_log_delivery
            """
        )
        cursor.execute("ANALYZE")


def _search(rows: int) -> None:
    from django.contrib.admin.sites import site
    from django.db import connection
    from django.test import RequestFactory

    from hypermail_django.log.models import Delivery

    start = time.perf_counter()
    _generate(rows)
    print(f"\ngenerated {rows} deliveries and recipients in "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    admin = site._registry[Delivery]
    request = RequestFactory().get("/")
    middle = rows // 2
    terms = {
        "recipient address": f"reader{middle}@example.com",
        "Message-ID": f"<{middle}.bench@example.com>",
        "subject prefix": f"Your digest #{middle}",
    }
    print(f"{'admin search':20} {'ms (median of 5)':>17} {'rows':>6}  plan")
    for label, term in terms.items():
        timings = []
        for _ in range(5):
            # The whole search, as the admin's list runs it: the lookups, then
            # the first page of 50, newest first.
            start = time.perf_counter()
            found, _ = admin.get_search_results(
                request, admin.get_queryset(request), term
            )
            page = found.order_by("-created_at", "-pk")[:50]
            hits = list(page)
            timings.append((time.perf_counter() - start) * 1000)
        plan = page.explain()
        scans = "full scan!" if "SCAN hypermail_log_delivery" in plan else "indexed"
        print(f"{label:20} {statistics.median(timings):17.2f} {len(hits):6}  {scans}")
        if os.environ.get("BENCH_SHOW_PLAN"):
            print(plan)
        assert hits, term
    # The list page itself: its filters (the mailer filter asks the database
    # for the mailers in use) and the first page, newest first.
    from django.contrib.auth.models import User

    request.user = User(is_superuser=True, is_staff=True, is_active=True)
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        changelist = admin.get_changelist_instance(request)
        for spec in changelist.filter_specs:
            list(spec.choices(changelist))
        rows_shown = len(list(changelist.result_list))
        timings.append((time.perf_counter() - start) * 1000)
    print(
        f"{'list page, filters':20} {statistics.median(timings):17.2f} {rows_shown:6}"
    )
    del connection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-bulk", action="store_true")
    args = parser.parse_args()
    ensure_postfix_tools()
    warnings.simplefilter("ignore")

    with tempfile.TemporaryDirectory() as tmp, smtp_sink() as port:
        os.environ["BENCH_SMTP_PORT"] = str(port)
        os.environ["BENCH_DB"] = os.path.join(tmp, "log.sqlite3")
        os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings_log"
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(f"Django {django.get_version()}, {os.cpu_count()} CPUs, SQLite (WAL)")
        if not args.skip_bulk:
            _bulk(args)
        _search(args.rows)


if __name__ == "__main__":
    main()
