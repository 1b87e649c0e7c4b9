"""Tests of ``hypermail_django.auth``: password reset."""
