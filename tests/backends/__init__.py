"""Tests of ``hypermail_django.backends``: Django's email backend API."""
