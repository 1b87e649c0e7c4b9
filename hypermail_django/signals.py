"""Signals around every send, so a project can audit, alter or stop a message.

- ``pre_send(sender, message, backend)``: before a message is prepared. Change the
  message here, or raise :class:`~hypermail_django.exceptions.CancelSend` to skip it.
- ``post_send(sender, message, status, backend)``: the message was accepted for
  at least one recipient; ``status`` is its ``DeliveryStatus`` (refused and
  deferred recipients are listed there).
- ``send_failed(sender, message, error, status, backend)``: no recipient accepted
  it; ``error`` is the exception about to be raised (or swallowed by
  ``fail_silently``).

``sender`` is the backend class.
"""

from django.dispatch import Signal

pre_send = Signal()
post_send = Signal()
send_failed = Signal()
