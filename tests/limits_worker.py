"""One process of the shared-limits test: 8 threads sending through one mailer.

Run by tests/backends/test_limits.py as ``python -m tests.limits_worker CONFIG_JSON``;
prints a JSON summary: how many sends were accepted, how many were refused
with ``rate_limited``, and any other error.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import django
from django.conf import settings


def main() -> None:
    config = json.loads(sys.argv[1])
    settings.configure(
        CACHES=config["caches"],
        DATABASES=config.get("databases", {}),
        INSTALLED_APPS=["hypermail_django"],
        DEFAULT_FROM_EMAIL="shop@example.com",
    )
    django.setup()
    if config.get("setup"):
        from django.core.management import call_command

        call_command("createcachetable", verbosity=0)
        return

    from django.core.mail import EmailMessage

    from hypermail_django.backends import FluxMailBackend
    from hypermail_django.exceptions import SendError

    counts: dict[str, Any] = {"sent": 0, "rate_limited": 0, "other": []}
    lock = threading.Lock()

    def run(thread: int) -> None:
        backend = FluxMailBackend(alias="provider", **config["options"])
        for number in range(config["per_thread"]):
            to = f"p{config['process']}t{thread}n{number}@example.com"
            try:
                backend.send_messages([EmailMessage("Hi", "Body", to=[to])])
                outcome = "sent"
            except SendError as error:
                outcome = error.code or "send_failed"
            with lock:
                if outcome in ("sent", "rate_limited"):
                    counts[outcome] += 1
                else:
                    counts["other"].append(outcome)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
