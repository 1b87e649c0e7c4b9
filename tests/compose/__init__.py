"""Tests of ``hypermail_django.compose``: building messages."""
