"""Routing across mailers: options, the order members are tried in, their
health, and which recipients move on to the next member.

The backend that uses these is :class:`hypermail_django.backends.RoutingBackend`.
"""
