"""Tests of ``hypermail_django.bulk``: send_bulk and asend_bulk."""
