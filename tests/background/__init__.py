"""Tests of ``hypermail_django.background``: delivery on Tasks."""
