"""What the test SMTP server saw: the record types, and their thread-safe store.

The server's event loop thread writes (:class:`ServerRecords`), the test's
thread reads snapshots; :meth:`ServerRecords.wait_for_messages` lets a test
wait for mail sent in the background.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import threading
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["AuthAttempt", "ReceivedCommand", "ReceivedMessage", "ServerRecords"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted (it replied 250 to the end of DATA).

    ``data`` holds the bytes exactly as received after dot-unstuffing, with the
    line endings the client sent, so a test can check what went over the wire,
    not a re-serialisation of it. Recipients refused at RCPT time (by a fault or
    otherwise) are not in ``rcpt_tos``: this is the envelope the server would
    deliver.
    """

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    rcpt_options: list[str]
    session: int
    """Number of the TCP connection that delivered it (1 for the first one)."""
    smtputf8: bool
    """Whether the client asked for SMTPUTF8 in ``MAIL FROM``."""
    tls: bool
    """Whether the session was TLS-protected (STARTTLS or implicit TLS)."""
    authenticated_as: str | None
    """The username the session authenticated as, if any."""
    received_at: float = 0.0
    """``time.monotonic()`` when the server accepted it (for rate tests)."""

    def message(self) -> email.message.EmailMessage:
        """Parse ``data`` with the modern email API, for header/body assertions."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


class ReceivedCommand(NamedTuple):
    """One SMTP command as the server received it (a plain 3-tuple too)."""

    session: int
    verb: str
    """Upper-case command verb (``"MAIL"``, ``"RCPT"``, ``"EHLO"``...)."""
    argument: str
    """Everything after the verb. For ``AUTH`` only the mechanism is kept: the
    rest of the line carries credentials."""


class AuthAttempt(NamedTuple):
    """One AUTH exchange that reached the credential check. No password, ever."""

    username: str
    success: bool


class ServerRecords:
    """Every record of one server, behind one lock: messages, commands, raw
    reads, AUTH attempts, client certificates and counters.

    Written from the server's event loop thread, read from the test's thread:
    every accessor returns a snapshot.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._messages: list[ReceivedMessage] = []
        self._commands: list[ReceivedCommand] = []
        self._chunks: list[tuple[int, bytes]] = []
        self._auth_attempts: list[AuthAttempt] = []
        self._client_cert_subjects: list[str] = []
        self._sessions = 0
        self._round_trips = 0

    # -- written by the server ----------------------------------------------

    def add(
        self,
        *,
        message: ReceivedMessage | None = None,
        command: ReceivedCommand | None = None,
        auth_attempt: AuthAttempt | None = None,
        client_cert_subject: str | None = None,
    ) -> None:
        """Record what a session saw, and wake :meth:`wait_for_messages`."""
        with self._changed:
            if message is not None:
                self._messages.append(message)
            if command is not None:
                self._commands.append(command)
            if auth_attempt is not None:
                self._auth_attempts.append(auth_attempt)
            if client_cert_subject is not None:
                self._client_cert_subjects.append(client_cert_subject)
            self._changed.notify_all()

    def add_read(self, session: int, data: bytes) -> None:
        """One read from a client socket (its first 512 bytes)."""
        with self._lock:
            self._chunks.append((session, bytes(data[:512])))

    def count_round_trip(self) -> None:
        with self._lock:
            self._round_trips += 1

    def new_session(self) -> int:
        """Count a new TCP connection; return its number (1 for the first)."""
        with self._lock:
            self._sessions += 1
            return self._sessions

    # -- read by the test ----------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def commands(self) -> list[ReceivedCommand]:
        with self._lock:
            return list(self._commands)

    @property
    def reads(self) -> list[tuple[int, bytes]]:
        with self._lock:
            return list(self._chunks)

    @property
    def round_trips(self) -> int:
        with self._lock:
            return self._round_trips

    @property
    def sessions(self) -> int:
        with self._lock:
            return self._sessions

    @property
    def auth_attempts(self) -> list[AuthAttempt]:
        with self._lock:
            return list(self._auth_attempts)

    @property
    def client_cert_subjects(self) -> list[str]:
        with self._lock:
            return list(self._client_cert_subjects)

    def clear(self) -> None:
        """Forget every record and counter; the next session is number 1."""
        with self._lock:
            self._messages.clear()
            self._commands.clear()
            self._chunks.clear()
            self._round_trips = 0
            self._auth_attempts.clear()
            self._client_cert_subjects.clear()
            self._sessions = 0

    def wait_for_messages(self, n: int, timeout: float) -> list[ReceivedMessage]:
        """Block until at least ``n`` messages were accepted; return them all,
        or raise ``AssertionError`` describing what the server did receive."""
        with self._changed:
            if self._changed.wait_for(lambda: len(self._messages) >= n, timeout):
                return list(self._messages)
            messages = list(self._messages)
            commands = self._commands[-30:]
        lines = [
            f"expected {n} message(s) within {timeout}s, "
            f"the server accepted {len(messages)}:"
        ]
        lines += [
            f"  session {m.session}: {m.mail_from} -> {', '.join(m.rcpt_tos)}"
            for m in messages
        ]
        lines.append("last commands received (session, verb, argument):")
        lines += [f"  {tuple(c)!r}" for c in commands] or ["  (none)"]
        raise AssertionError("\n".join(lines))
