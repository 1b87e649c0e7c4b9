"""OAuth2 sign-in for SMTP: access tokens and the providers that fetch them.

Set ``auth_mechanism`` to ``"xoauth2"`` (or ``"oauthbearer"``) and
``token_provider`` to any callable returning a token, or to one of these:

* :class:`MicrosoftClientCredentials`: Microsoft 365 (``hypermail-django[microsoft]``),
* :class:`GoogleServiceAccount`: Google Workspace (``hypermail-django[google]``),
* :class:`RefreshToken`: any provider's RFC 6749 refresh-token grant.

Each is callable with no arguments, compares by value (so two mailers
configured alike share one cached token) and keeps its secrets out of ``repr``.
"""

from __future__ import annotations

from ..transport.token_cache import AccessToken, TokenError, TokenProvider
from .google import GoogleServiceAccount
from .microsoft import MicrosoftClientCredentials
from .provider import Provider
from .refresh import RefreshToken

__all__ = [
    "AccessToken",
    "GoogleServiceAccount",
    "MicrosoftClientCredentials",
    "Provider",
    "RefreshToken",
    "TokenError",
    "TokenProvider",
]
