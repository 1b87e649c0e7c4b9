"""The JSON-safe arguments of an email task, and their format version.

A task argument outlives the code that wrote it: a message enqueued before a
deploy is delivered by the new code after it. So the payload is plain JSON
(every task backend can store it; no pickle, nothing importable), carries a
``format`` number, and :func:`read_payload` accepts every format ever written.

Format 1::

    {
      "format": 1,
      "using": "default",           # mailer alias, or null for the EMAIL_* mailer
      "message_id": "<...@host>",   # for logs and signals
      "mail_from": "shop@example.com",
      "recipients": ["alice@example.com"],   # still to be delivered
      "data": "RnJvbTog...",        # the serialized message, base64
      "smtputf8": false,
      "enqueued_at": 1767225600.0,  # first enqueue, Unix time
      "requeues": 0                 # re-enqueues so far
    }

No credentials ever go in: the worker looks the mailer up by its alias in its
own settings.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from typing import Any

from ..exceptions import FluxMailException
from ..transport import Envelope

#: Where task backends find the email task; stored with every queued email, so
#: it must not change while tasks may be waiting (see ``tasks.py``).
TASK_PATH = "hypermail_django.background.tasks.deliver_email"

#: The format this code writes.
FORMAT = 1
#: The formats this code reads.
READABLE_FORMATS = frozenset({1})


class InvalidPayload(FluxMailException, ValueError):
    """A task argument that is not an email payload this version can read."""

    default_code = "invalid_task_payload"


@dataclass(frozen=True)
class Payload:
    """One email task's arguments, decoded."""

    envelope: Envelope
    using: str | None
    enqueued_at: float
    requeues: int = 0

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored by the task backend."""
        envelope = self.envelope
        return {
            "format": FORMAT,
            "using": self.using,
            "message_id": envelope.message_id,
            "mail_from": envelope.mail_from,
            "recipients": list(envelope.recipients),
            "data": base64.b64encode(envelope.data).decode("ascii"),
            "smtputf8": envelope.smtputf8,
            "enqueued_at": self.enqueued_at,
            "requeues": self.requeues,
            # Only when a staging policy kept recipients back (for the status).
            **(
                {"suppressed": list(envelope.suppressed)} if envelope.suppressed else {}
            ),
        }

    def requeued(self, recipients: list[str]) -> Payload:
        """The payload of the next attempt, for the recipients still pending."""
        return replace(
            self,
            envelope=replace(self.envelope, recipients=tuple(recipients)),
            requeues=self.requeues + 1,
        )


def read_payload(raw: Any) -> Payload:
    """Decode a stored task argument; raise :class:`InvalidPayload` if unusable."""
    if not isinstance(raw, dict):
        raise InvalidPayload(f"An email task payload is a JSON object, got {raw!r}.")
    version = raw.get("format")
    if version not in READABLE_FORMATS:
        raise InvalidPayload(
            f"Email task payload format {version!r} is not one this version of "
            f"hypermail-django reads ({sorted(READABLE_FORMATS)}). Run the worker "
            "on the same version as the code that enqueued it."
        )
    try:
        envelope = Envelope(
            mail_from=str(raw["mail_from"]),
            recipients=tuple(str(r) for r in raw["recipients"]),
            data=base64.b64decode(raw["data"], validate=True),
            smtputf8=bool(raw["smtputf8"]),
            message_id=raw["message_id"],
            suppressed=tuple(str(r) for r in raw.get("suppressed", ())),
        )
        using = raw["using"]
        return Payload(
            envelope=envelope,
            using=None if using is None else str(using),
            enqueued_at=float(raw["enqueued_at"]),
            requeues=int(raw["requeues"]),
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise InvalidPayload(
            f"Email task payload (format {version}) is damaged: {exc!r}."
        ) from None
