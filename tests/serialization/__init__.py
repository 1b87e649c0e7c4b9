"""Tests of ``hypermail_django.serialization``: envelope, bytes."""
