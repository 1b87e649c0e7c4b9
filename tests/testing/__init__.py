"""Tests of ``hypermail_django.testing``: the tools for users' tests."""
