"""Tests of ``hypermail_django.management``: manage.py commands."""
