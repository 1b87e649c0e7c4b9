"""Tests of ``hypermail_django.conf``: settings, validators, checks."""
