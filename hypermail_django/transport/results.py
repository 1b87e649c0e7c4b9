"""Per-recipient outcome of a delivery, recorded on each message."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

RecipientState = Literal["sent", "refused", "deferred", "uncertain", "suppressed"]


@dataclass(frozen=True)
class RecipientStatus:
    """How the server answered one recipient: ``sent``, ``refused`` (5xx,
    permanent), ``deferred`` (4xx or a lost connection, retries spent),
    ``uncertain`` (the message was sent and no reply came: it may have been
    queued; see ``retry_uncertain``) or ``suppressed`` (a staging policy kept
    it back: never sent to)."""

    status: RecipientState
    code: int | None
    reply: str

    @classmethod
    def from_reply(cls, code: int, reply: bytes | str) -> RecipientStatus:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
        if 200 <= code < 300:
            return cls("sent", code, text)
        return cls("deferred" if 400 <= code < 500 else "refused", code, text)

    @property
    def summary(self) -> str:
        """The code and reply for a log line or message: never ``None``, and
        the code once even when the reply already begins with it."""
        reply = self.reply.strip()
        if self.code is None or reply.startswith(str(self.code)):
            return reply or "no reply"
        return f"{self.code} {reply}".strip()


@dataclass
class DeliveryStatus:
    """The outcome of sending one message, kept as ``message.hypermail_status``.

    ``status`` summarises it: ``sent`` (every recipient accepted), ``partial`` (some
    accepted), ``failed`` (none), ``suppressed`` (a staging policy kept every
    recipient back), ``cancelled`` (a ``pre_send`` receiver stopped it).
    """

    message_id: str | None = None
    attempts: int = 0
    recipients: dict[str, RecipientStatus] = field(default_factory=dict)
    cancelled: bool = False
    mailer: str | None = None
    """The alias of the mailer that delivered (a ``RoutingBackend`` member)."""

    def _with(self, state: RecipientState) -> list[str]:
        return [addr for addr, rs in self.recipients.items() if rs.status == state]

    @property
    def sent(self) -> list[str]:
        return self._with("sent")

    @property
    def refused(self) -> list[str]:
        return self._with("refused")

    @property
    def deferred(self) -> list[str]:
        return self._with("deferred")

    @property
    def uncertain(self) -> list[str]:
        return self._with("uncertain")

    @property
    def suppressed(self) -> list[str]:
        return self._with("suppressed")

    @property
    def status(self) -> str:
        if self.cancelled:
            return "cancelled"
        sent = self.sent
        if not sent:
            if self.recipients and len(self.suppressed) == len(self.recipients):
                return "suppressed"
            return "failed"
        if len(sent) == len(self.recipients) - len(self.suppressed):
            return "sent"
        return "partial"
