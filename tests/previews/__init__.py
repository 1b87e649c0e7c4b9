"""Tests of ``hypermail_django.previews``: the mail previews."""
