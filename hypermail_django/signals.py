"""Signals around every send, so a project can audit, alter or stop a message.

- ``pre_send(sender, message, backend)``: before a message is prepared. Change the
  message here, or raise :class:`~hypermail_django.exceptions.CancelSend` to skip it.
- ``post_send(sender, message, status, backend)``: the message was accepted for
  at least one recipient; ``status`` is its ``DeliveryStatus`` (refused and
  deferred recipients are listed there).
- ``send_failed(sender, message, error, status, backend)``: no recipient accepted
  it; ``error`` is the exception about to be raised (or swallowed by
  ``fail_silently``).

``sender`` is the backend class. Where the serialized message is at hand (every
path of this package), both also carry ``envelope``: the
:class:`~hypermail_django.transport.Envelope` that was sent (its ``data`` are
the exact bytes), else None. Receivers take ``**kwargs``, so it is optional.

Background delivery (``hypermail_django.background``) has no Django message in
the worker, only its serialized bytes, so its outcomes have signals of their
own, identified by Message-ID and mailer alias:

- ``background_sent(sender, message_id, status, alias)``: a worker delivered
  the message to at least one recipient.
- ``background_send_failed(sender, message_id, error, status, alias)``: a
  worker gave up on one or more recipients: refused permanently (5xx), or still
  deferred when re-enqueueing was no longer allowed. ``status`` tells each
  recipient's fate; ``error`` is the ``SendError`` that ended it.

For these two, ``sender`` is the class of the mailer that handled the message,
and ``envelope`` is the stored message the worker delivered.
"""

from django.dispatch import Signal

pre_send = Signal()
post_send = Signal()
send_failed = Signal()
background_sent = Signal()
background_send_failed = Signal()
