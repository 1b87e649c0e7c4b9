"""Tests of ``hypermail_django.transport``: SMTP without Django."""
