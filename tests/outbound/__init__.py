"""Tests of ``hypermail_django.outbound``: per-mailer policies, DKIM."""
