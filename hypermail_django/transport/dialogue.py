"""The SMTP mail transaction, written once and without I/O, for both drivers.

Why a generator: the transaction is a conversation whose next step depends on
each reply, and it has to be judged the same way whether smtplib (threads) or
aiosmtplib (asyncio) moves the bytes. Like h11 and httpcore, the protocol is
kept apart from the I/O: :func:`attempt` yields what to do (:class:`Write`,
:class:`Read`, :data:`CLOSE`, and the lease steps :data:`ACQUIRE`,
:data:`DISCARD`, :class:`Settle`) and is sent back what happened; a driver
(``connection.run_attempt`` for smtplib, ``async_connection.arun_attempt`` for
aiosmtplib) performs each step and throws :class:`Broken` into the dialogue
when the connection fails. Like tenacity's ``iter()``, every decision lives
here; the drivers are a dozen lines each.

The rules it enforces (``docs/pool.md``, ``docs/retries.md``):

* A pooled connection is replaced silently only when provably nothing of the
  transaction was processed: the server closed it (EOF, or ``421`` then close)
  before answering anything. A read timeout is never taken for a dead
  connection: the attempt is counted and the retry policy decides.
* The content goes out at most once per attempt. When the connection times out
  or drops after the whole content was written (the end of ``DATA``, or ``BDAT
  ... LAST``) and before its reply, the recipients' outcome is ``uncertain``:
  the server may have queued the message (RFC 5321 section 4.5.3.2.6 asks a
  client to wait 10 minutes there, for this reason). Only ``retry_uncertain``
  retries it.
* Each reply to a command is awaited for ``timeout``; the reply to the content,
  and in the one-write dialogue every reply of that write (a server may hold
  them all until it has processed the content), for ``data_timeout``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, NamedTuple, TypeVar

from . import failures
from .commands import transaction_commands
from .config import TransportConfig
from .envelope import Envelope
from .errors import SendError
from .results import RecipientStatus

__all__ = [
    "ACQUIRE",
    "CLOSE",
    "DISCARD",
    "EAGER_CHUNK_LIMIT",
    "Acquired",
    "Broken",
    "Read",
    "Reply",
    "Settle",
    "StaleConnection",
    "Stepper",
    "Write",
    "attempt",
    "bdat_last",
    "dot_stuffed",
]

#: Up to this size a message goes out in the same write as MAIL and RCPT when
#: the server offers both PIPELINING and CHUNKING. A bigger one waits until a
#: recipient is accepted, so a refused transaction never uploads megabytes and
#: a server that stops reading cannot leave us blocked mid-write.
EAGER_CHUNK_LIMIT = 64 * 1024


# The steps are named tuples: several are made for every message, and a
# frozen dataclass costs five times as much to build.


class Write(NamedTuple):
    """Send ``data`` in one write; ``replies`` replies are due for it."""

    data: bytes
    replies: int


class Read(NamedTuple):
    """Read the next reply, waiting at most ``timeout`` seconds."""

    timeout: float
    awaiting: str
    """What the reply answers, for error texts: ``MAIL FROM``, ``RCPT TO``..."""


class Reply(NamedTuple):
    """A server reply as both drivers hand it back."""

    code: int
    text: str


class _Step:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Close the connection without a word (the conversation is broken).
CLOSE = _Step("CLOSE")
#: Take a connection from the lease: answered with ``(offers, fresh, where)``.
ACQUIRE = _Step("ACQUIRE")
#: Drop the leased connection (closed or unusable), so the next ACQUIRE opens one.
DISCARD = _Step("DISCARD")


class Settle(NamedTuple):
    """The attempt is over: give the connection back to the lease's care
    (dropped if it closed; counted against its message limit if ``delivered``)."""

    delivered: bool


class Acquired(NamedTuple):
    """The driver's answer to ACQUIRE."""

    offers: Callable[[str], bool]
    """Whether the server offered an ESMTP extension (lowercase name)."""
    fresh: bool
    """Opened for this attempt, rather than reused from the pool."""


Step = Write | Read | _Step | Settle
#: What a driver sends back: a reply for Read, the connection for ACQUIRE.
Answer = Reply | Acquired | None
Dialogue = Generator[Step, Answer, dict[str, RecipientStatus]]
T = TypeVar("T")
#: The transaction's own generators: what is sent in is the answer to the
#: step they yielded (a Reply for a Read), so they take it as that.
Talk = Generator[Step, Any, T]


class Broken(Exception):
    """Thrown into the dialogue by a driver: the connection failed.

    ``timed_out`` tells a silent server from a closed connection: only the
    latter can prove that nothing was processed.
    """

    def __init__(self, detail: str, *, timed_out: bool) -> None:
        super().__init__(detail)
        self.timed_out = timed_out


class StaleConnection(Exception):
    """The server closed the connection before answering anything of the
    transaction: nothing of it was processed, so it is safe to replace the
    connection and try again at once."""


class Stepper:
    """Walks a dialogue for a driver: each step to perform, then its answer
    (:meth:`answer`) or the failure of the connection (:meth:`fail`); at the
    end, :attr:`outcome`. The drivers' whole loop is::

        for step in stepper:
            try:
                stepper.answer(perform(step))
            except <the library's connection errors> as exc:
                stepper.fail(exc, timed_out=...)
    """

    def __init__(self, dialogue: Dialogue) -> None:
        self._dialogue = dialogue
        self._next: Step | None = None
        self.outcome: dict[str, RecipientStatus] = {}
        self._advance(dialogue.send, None)

    def __iter__(self) -> Iterator[Step]:
        while self._next is not None:
            yield self._next

    def answer(self, answer: Answer) -> None:
        try:  # _advance(), inlined: this runs for every step of every send.
            self._next = self._dialogue.send(answer)
        except StopIteration as done:
            self._next = None
            self.outcome = done.value

    def fail(self, exc: BaseException, *, timed_out: bool) -> None:
        """The step failed with ``exc``. A :class:`SendError` is already a
        verdict (opening a connection failed, or the dialogue's own): raised
        as it is; anything else is the connection breaking."""
        if isinstance(exc, SendError):
            raise exc
        self._advance(self._dialogue.throw, Broken(str(exc), timed_out=timed_out))

    def close(self) -> None:
        self._dialogue.close()

    def _advance(self, move: Callable[[Any], Step], argument: Any) -> None:
        try:
            self._next = move(argument)
        except StopIteration as done:
            self._next = None
            self.outcome = done.value


def attempt(
    envelope: Envelope, recipients: Sequence[str], config: TransportConfig
) -> Dialogue:
    """One counted delivery attempt of ``envelope`` to ``recipients``.

    Takes a connection from the lease, replacing a pooled one the server had
    closed (that does not count), and runs the transaction on it. Returns each
    recipient's status for this attempt; raises a :class:`SendError` when the
    attempt failed as a whole (``transient`` tells the retry policy whether
    another attempt may succeed).
    """
    where = f"{config.host}:{config.port}"
    while True:
        acquired = yield ACQUIRE
        assert isinstance(acquired, Acquired)
        transaction = _Transaction(envelope, recipients, acquired.offers, config, where)
        try:
            try:
                outcome = yield from transaction.converse()
            except Broken as broken:
                yield CLOSE
                raise transaction.failure(broken) from None
        except _ServerClosing:
            # It said 421 at RCPT, then closed: the message never got in.
            outcome = transaction.everyone_closing()
        except StaleConnection as exc:
            yield DISCARD
            if acquired.fresh:
                raise failures.closed_before_mail(where, exc) from None
            continue  # A pooled connection the server had closed: free to replace.
        except SendError:
            yield Settle(delivered=False)
            raise
        yield Settle(delivered=any(s.status == "sent" for s in outcome.values()))
        return outcome


class _ServerClosing(Exception):
    """Internal: the connection ended after the server said 421 at RCPT."""


class _Transaction:
    """MAIL, RCPT for each recipient, and the content as DATA or BDAT; once.

    Four dialogues, picked from the server's EHLO: one command at a time; RFC
    2920 PIPELINING (MAIL, every RCPT and DATA in one write: two round trips);
    RFC 3030 CHUNKING (the content as one ``BDAT <size> LAST``, no
    dot-stuffing); both (up to :data:`EAGER_CHUNK_LIMIT`, the content rides in
    the first write: one round trip). The replies are judged the same way in
    every dialogue.
    """

    def __init__(
        self,
        envelope: Envelope,
        recipients: Sequence[str],
        offers: Callable[[str], bool],
        config: TransportConfig,
        where: str,
    ) -> None:
        self.envelope = envelope
        self.recipients = recipients
        self.config = config
        self.where = where
        # Before anything is written: SMTPUTF8 refused here sends nothing.
        mail, rcpts = transaction_commands(envelope, recipients, offers)
        encoding = "utf-8" if envelope.smtputf8 else "ascii"
        self.mail = (mail + "\r\n").encode(encoding)
        self.rcpts = [(line + "\r\n").encode(encoding) for line in rcpts]
        self.pipelined = offers("pipelining")
        self.chunked = offers("chunking")
        self.eager = (
            self.pipelined and self.chunked and len(envelope.data) <= EAGER_CHUNK_LIMIT
        )
        #: Whether the server answered anything of this transaction yet.
        self.answered = False
        #: Whether the whole content has been written.
        self.content_sent = False
        self.statuses: dict[str, RecipientStatus] = {}
        self.accepted: list[str] = []
        #: Set when the server said 421 at RCPT: it is closing.
        self.closing: RecipientStatus | None = None
        #: The reply the step under way waits for (None: a write), and how long.
        self.awaiting: str | None = None
        self.wait = config.timeout

    def everyone_closing(self) -> dict[str, RecipientStatus]:
        """After a 421 at RCPT: everyone not refused is deferred."""
        return self._everyone(self.closing)

    def converse(self) -> Talk[dict[str, RecipientStatus]]:
        """The transaction. A :class:`Broken` thrown in at any step leaves it
        (reads and writes are plain steps, not sub-generators: each level of
        ``yield from`` costs every step of every send); :meth:`failure` says
        what it means."""
        if self.pipelined:
            flight = self.mail + b"".join(self.rcpts)
            if not self.chunked:
                flight += b"DATA\r\n"
            if self.eager:
                flight += bdat_last(self.envelope.data)
            replies = 1 + len(self.rcpts) + self._trailing_replies()
            yield self._writing(flight, replies)
            self.content_sent = self.eager
        else:
            yield self._writing(self.mail, 1)
        reply: Reply = yield self._reading("MAIL FROM")
        self.answered = True
        if reply.code == 421:
            yield CLOSE
            raise StaleConnection(reply.text)
        if reply.code != 250:
            if self.pipelined:  # Their 503s; then the connection is clean.
                yield from self._drain(len(self.rcpts) + self._trailing_replies())
            yield from self._reset()
            raise failures.sender_refused(self.envelope, reply.code, reply.text)

        for rcpt, line in zip(self.recipients, self.rcpts, strict=True):
            if not self.pipelined:
                yield self._writing(line, 1)
            reply = yield self._reading("RCPT TO")
            if reply.code in (250, 251):
                self.accepted.append(rcpt)
                continue
            self.statuses[rcpt] = RecipientStatus.from_reply(reply.code, reply.text)
            if reply.code == 421:
                # The server is closing: everyone not yet refused is deferred
                # to the next attempt. An eager chunk is already on its way, so
                # hear the server out: one that carries on may still take it.
                self.closing = RecipientStatus("deferred", reply.code, reply.text)
                if not self.eager:
                    yield CLOSE
                    raise _ServerClosing

        if self.chunked:
            final = yield from self._chunk()
        else:
            final = yield from self._data()
        if self.closing is not None:
            yield CLOSE
        if not self.accepted:
            yield from self._reset()
            return self.statuses
        assert final is not None
        if final.code != 250:
            yield from self._reset()
            raise failures.data_refused(
                self.envelope, final.code, final.text, self.accepted, self.statuses
            )
        sent = RecipientStatus("sent", final.code, final.text)
        return {rcpt: sent for rcpt in self.accepted} | self.statuses

    def _trailing_replies(self) -> int:
        """Replies due after the RCPTs' in the first write: DATA's, or BDAT's."""
        return 1 if self.pipelined and (self.eager or not self.chunked) else 0

    def _data(self) -> Talk[Reply | None]:
        """DATA, then the dot-stuffed content once the server said 354.

        Pipelined, DATA already went out with MAIL and RCPT; if no recipient
        was accepted and the server still said 354, an empty message ends it
        (RFC 2920). Returns the reply to the content, or to DATA, or None when
        nothing was sent (nobody to send it to).
        """
        if not self.pipelined:
            if not self.accepted:
                return None
            yield self._writing(b"DATA\r\n", 1)
        reply: Reply = yield self._reading("DATA")
        if reply.code != 354:
            return reply
        if not self.accepted:
            yield self._writing(b".\r\n", 1)
            empty: Reply = yield self._reading("the end of an empty message")
            return empty
        yield self._writing(dot_stuffed(self.envelope.data), 1)
        self.content_sent = True
        end: Reply = yield self._reading("the end of the message")
        return end

    def _chunk(self) -> Talk[Reply | None]:
        """The content as one ``BDAT <size> LAST`` (RFC 3030); its reply.

        An eager chunk already went out with MAIL and RCPT: only its reply is
        left to read (a refusal when no recipient was accepted).
        """
        if not self.eager:
            if not self.accepted:
                return None
            yield self._writing(bdat_last(self.envelope.data), 1)
            self.content_sent = True
        end: Reply = yield self._reading("BDAT LAST (the end of the message)")
        return end

    def _writing(self, data: bytes, replies: int) -> Write:
        """The step that writes ``data``; a failure now is a failed write."""
        self.awaiting = None
        return Write(data, replies)

    def _reading(self, awaiting: str) -> Read:
        """The step that reads the reply to ``awaiting``, for as long as it
        may take: ``data_timeout`` once the whole content is out."""
        config = self.config
        self.wait = config.data_timeout if self.content_sent else config.timeout
        self.awaiting = awaiting
        return Read(self.wait, awaiting)

    def failure(self, broken: Broken) -> Exception:
        """What the connection breaking means at this point of the transaction."""
        if self.closing is not None:
            return _ServerClosing()
        if not self.answered and not broken.timed_out:
            return StaleConnection(str(broken))
        awaiting, timed_out = self.awaiting, broken.timed_out
        if self.content_sent:
            if timed_out and awaiting is not None:
                detail = failures.no_answer(self.where, self.wait, awaiting)
            else:
                detail = f"{self.where} closed the connection ({broken})"
            return failures.delivery_uncertain(
                self.envelope,
                detail,
                self._everyone(_UNCERTAIN),
                retry=self.config.retry_uncertain,
            )
        if timed_out and awaiting is not None:
            return failures.reply_timeout(self.where, self.wait, awaiting)
        return failures.lost_while_sending(self.envelope, broken)

    def _everyone(self, status: RecipientStatus | None) -> dict[str, RecipientStatus]:
        """``status`` for every recipient the server did not answer for itself."""
        assert status is not None
        return {rcpt: self.statuses.get(rcpt, status) for rcpt in self.recipients}

    def _drain(self, count: int) -> Generator[Step, Answer, None]:
        """Read and drop ``count`` pipelined replies nobody needs any more."""
        try:
            for _ in range(count):
                yield Read(self.config.timeout, "a pipelined command")
        except Broken:
            yield CLOSE

    def _reset(self) -> Generator[Step, Answer, None]:
        """RSET so the connection can carry the next message; drop it if that fails."""
        try:
            yield Write(b"RSET\r\n", 1)
            reply = yield Read(self.config.timeout, "RSET")
        except Broken:
            yield CLOSE
            return
        if not isinstance(reply, Reply) or reply.code != 250:
            yield CLOSE


#: Recorded for a recipient whose fate the server never told us.
_UNCERTAIN = RecipientStatus(
    "uncertain", None, "no reply after the message was sent; it may have been queued"
)


def dot_stuffed(data: bytes) -> bytes:
    """The content as DATA carries it (RFC 5321 4.5.2): every line starting
    with a dot gets another one, and a line with a single dot ends it (plain
    replaces: five times faster than a multi-line regex on a 4 KB message)."""
    stuffed = data.replace(b"\n.", b"\n..")  # CRLF already: see Envelope.
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    return stuffed + b".\r\n"


def bdat_last(data: bytes) -> bytes:
    """The content as one last BDAT chunk (RFC 3030): sent as is, neither
    dot-stuffed nor ended by a dot, with the same line ends as for DATA."""
    return b"BDAT %d LAST\r\n" % len(data) + data
