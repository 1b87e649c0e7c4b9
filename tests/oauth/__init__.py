"""Tests of ``hypermail_django.oauth``: OAuth2 token providers."""
