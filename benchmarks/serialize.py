"""CPU to build and serialize one message: Django's own way against ours.

    .venv/bin/python -m benchmarks.serialize [--messages 3000] [--rounds 3]

The bulk benchmark's ~4.2 KB messages (text plus an HTML alternative), built and
serialized as Django's SMTP backend does (``message().as_bytes()`` on 5.2,
``message(policy=SMTP).as_bytes()`` on 6.x) and as ``FluxMailBackend`` does
(``compat.serialize``: the same builder, with the policies of
``hypermail_django.serialization.email_policies`` and the generator of
``hypermail_django.serialization.flatten``).
Rounds alternate; medians of CPU time per message. Checks on the way that both
give the same bytes once MIME boundaries are made equal.
"""

from __future__ import annotations

import argparse
import email.policy
import platform
import random
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import django
from django.conf import settings

from benchmarks.bulk import make_messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    settings.configure(DEFAULT_FROM_EMAIL="bench@example.com")
    django.setup()
    from hypermail_django.compat import MODERN_EMAIL_API, serialize

    def djangos(message: Any) -> bytes:
        if MODERN_EMAIL_API:
            return bytes(message.message(policy=email.policy.SMTP).as_bytes())
        return bytes(message.message().as_bytes(linesep="\r\n"))

    def ours(message: Any) -> bytes:
        return serialize(message, smtputf8=False)[0]

    for message in make_messages(20, "check"):
        message.extra_headers["Message-ID"] = "<same@example.com>"
        message.extra_headers["Date"] = "Sat, 21 Nov 2026 09:00:00 +0000"
        random.seed(1)
        expected = djangos(message)
        random.seed(1)
        assert ours(message) == expected, "serialized bytes differ"

    print(f"Python {platform.python_version()}, Django {django.get_version()}")
    timings: dict[str, list[float]] = {"django": [], "ours": []}
    ways: dict[str, Callable[[Any], bytes]] = {"django": djangos, "ours": ours}
    for round_ in range(args.rounds):
        for name in ways if round_ % 2 == 0 else reversed(ways):
            messages = list(make_messages(args.messages, f"{name}{round_}"))
            start = time.process_time()
            for message in messages:
                ways[name](message)
            per_message = (time.process_time() - start) * 1000 / args.messages
            timings[name].append(per_message)
            print(f"  round {round_ + 1}: {name:6} {per_message:.3f} ms CPU/msg")
    django_ms = statistics.median(timings["django"])
    ours_ms = statistics.median(timings["ours"])
    print(
        f"build + serialize, CPU per message: Django {django_ms:.3f} ms, "
        f"ours {ours_ms:.3f} ms ({django_ms / ours_ms:.2f}x less), same bytes"
    )


if __name__ == "__main__":
    main()
