"""Tests of ``hypermail_django.log``: the delivery log app."""
