"""Tests of ``hypermail_django.routing``: RoutingBackend."""
