"""The delivery log: a record of every message this package sends.

An optional app: add ``"hypermail_django.log"`` to ``INSTALLED_APPS`` and run
``migrate``. It listens to the outcome signals (``post_send``, ``send_failed``,
``background_sent``, ``background_send_failed``) and keeps one
:class:`~.models.Delivery` per message and one :class:`~.models.Recipient` per
address, browsable in the admin. See ``docs/delivery-log.md``.
"""
