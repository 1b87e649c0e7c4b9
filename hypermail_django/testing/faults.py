"""The test SMTP server's scripted misbehaviour: faults, and their schedule.

A :class:`Fault` says what goes wrong (a refusal, a dropped connection, a wait,
silence), at which step of the dialogue, how often and for which subject; a
:class:`FaultSchedule` holds the faults of one server and decides, step by
step, which of them fire (:meth:`FaultSchedule.plan`).
"""

from __future__ import annotations

import enum
import re
import threading
from dataclasses import dataclass
from typing import NamedTuple

from aiosmtpd.smtp import SMTP

__all__ = [
    "CONNECT",
    "DATA_END",
    "FAULT_VERBS",
    "SMTP_VERBS",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "Plan",
]

#: Pseudo-verbs for the two moments of a dialogue that are not a client command.
CONNECT = "CONNECT"
DATA_END = "DATA_END"

#: Every command aiosmtpd understands (it dispatches to ``SMTP.smtp_<VERB>``).
SMTP_VERBS = frozenset(
    name.removeprefix("smtp_") for name in dir(SMTP) if name.startswith("smtp_")
)
FAULT_VERBS = SMTP_VERBS | {CONNECT, DATA_END, "BDAT"}
_REPLY_RE = re.compile(r"[2-5][0-9]{2}( [\x20-\x7e]*)?")


class FaultKind(enum.Enum):
    FAIL = "fail"
    """Reply with an error line instead of handling the step."""
    DROP = "drop"
    """Close the connection instead of replying."""
    DELAY = "delay"
    """Wait, then go on (normally, or with another fault of the step)."""
    HANG = "hang"
    """Never reply."""


@dataclass(frozen=True)
class Fault:
    """One misbehaviour at step ``verb``, validated when it is made.

    ``times``: how often it fires before it is used up (None: forever).
    ``match``: fire only when the step's subject contains this,
    case-insensitively. ``reply`` is for :attr:`FaultKind.FAIL`, ``seconds``
    for :attr:`FaultKind.DELAY`.
    """

    kind: FaultKind
    verb: str
    times: int | None = None
    match: str | None = None
    reply: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        verb = self.verb.upper()
        if verb not in FAULT_VERBS:
            raise ValueError(
                f"unknown step {verb!r}; expected one of {sorted(FAULT_VERBS)}"
            )
        object.__setattr__(self, "verb", verb)
        if self.times is not None and self.times < 1:
            raise ValueError("times must be a positive number or None (forever)")
        if self.kind is FaultKind.FAIL and not (
            isinstance(self.reply, str) and _REPLY_RE.fullmatch(self.reply)
        ):
            raise ValueError(
                f"reply must be one line of printable ASCII starting with a "
                f"2xx-5xx code, e.g. '451 4.3.0 Try again later'; got {self.reply!r}"
            )
        if self.seconds < 0:
            raise ValueError("seconds must not be negative")

    def applies_to(self, verb: str, subject: str) -> bool:
        if self.verb != verb:
            return False
        return self.match is None or self.match.casefold() in subject.casefold()


class Plan(NamedTuple):
    """What the server does at one step: wait ``delay``, then ``action`` (if any)."""

    delay: float
    action: Fault | None


class FaultSchedule:
    """The faults of one server, in the order they were added, each with the
    number of times it may still fire. Thread-safe: tests add faults while the
    server's loop plans its steps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[tuple[Fault, list[int | None]]] = []

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append((fault, [fault.times]))

    def clear(self) -> None:
        """Forget every fault not used up yet."""
        with self._lock:
            self._faults.clear()

    def plan(self, verb: str, subject: str) -> Plan:
        """Pick, and use up, the faults for one step: all matching delays, then
        the first matching fail/drop/hang in the order they were added."""
        delay = 0.0
        action: Fault | None = None
        with self._lock:
            for fault, remaining in self._faults:
                if not fault.applies_to(verb, subject):
                    continue
                if fault.kind is FaultKind.DELAY:
                    delay += fault.seconds
                elif action is None:
                    action = fault
                else:
                    continue
                if remaining[0] is not None:
                    remaining[0] -= 1
            self._faults = [(f, r) for f, r in self._faults if r[0] != 0]
        return Plan(delay, action)
