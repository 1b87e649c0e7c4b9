"""``AUTH XOAUTH2`` and ``AUTH OAUTHBEARER`` for the test SMTP server.

The server checks each token with the ``oauth`` callable it was given (the
in-process authorization server's :meth:`~.oauth_server.OAuthTestServer.check`
accepts only its own unexpired, unrevoked tokens for the right mailbox) and
refuses the others the way the big providers do:

* ``"microsoft"`` (Exchange Online): ``535 5.7.3 Authentication unsuccessful``;
* ``"google"`` (Gmail): a ``334`` challenge carrying base64 JSON
  ``{"status":"401",...}``, then, after the client's empty line,
  ``535 5.7.8 Username and Password not accepted``.

OAUTHBEARER refusals always use the RFC 7628 challenge (the client answers
``^A``). Nothing here logs or stores a token.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiosmtpd.smtp import MISSING, AuthResult

from .server_records import AuthAttempt

if TYPE_CHECKING:
    from .harness_smtp import HarnessContext

#: ``oauth(mailbox, token)``: True to accept, or False / a reason to refuse.
TokenCheck = Callable[[str, str], "bool | str"]

MICROSOFT_REFUSAL = "535 5.7.3 Authentication unsuccessful"
GOOGLE_REFUSAL = (
    "535 5.7.8 Username and Password not accepted. For more information, go to "
    "https://support.google.com/mail/?p=BadCredentials"
)
GOOGLE_CHALLENGE = {
    "status": "401",
    "schemes": "Bearer",
    "scope": "https://mail.google.com/",
}


def parse_xoauth2(blob: bytes) -> tuple[str, str] | None:
    """``user=<mailbox>^Aauth=Bearer <token>^A^A`` -> (mailbox, token)."""
    fields = dict(
        part.split("=", 1)
        for part in blob.decode("utf-8", "replace").split("\x01")
        if "=" in part
    )
    auth = fields.get("auth", "")
    if "user" not in fields or not auth.startswith("Bearer "):
        return None
    return fields["user"], auth[len("Bearer ") :]


def parse_oauthbearer(blob: bytes) -> tuple[str, str] | None:
    """RFC 7628 ``n,a=<mailbox>,^Ahost=..^Aport=..^Aauth=Bearer <token>^A^A``."""
    text = blob.decode("utf-8", "replace")
    header, _, rest = text.partition("\x01")
    gs2 = header.split(",")
    if len(gs2) < 2 or gs2[0] not in ("n", "y") or not gs2[1].startswith("a="):
        return None
    mailbox = gs2[1][2:].replace("=2C", ",").replace("=3D", "=")
    fields = dict(part.split("=", 1) for part in rest.split("\x01") if "=" in part)
    auth = fields.get("auth", "")
    if not auth.startswith("Bearer "):
        return None
    return mailbox, auth[len("Bearer ") :]


class OAuthMechanisms:
    """Mixed into the harness' aiosmtpd protocol; aiosmtpd finds ``auth_*``
    methods by name. ``self.context`` is what the server's sessions share."""

    context: HarnessContext

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:  # noqa: N802
        return await self._oauth("XOAUTH2", args, parse_xoauth2)

    async def auth_OAUTHBEARER(self, server: Any, args: list[str]) -> AuthResult:  # noqa: N802
        return await self._oauth("OAUTHBEARER", args, parse_oauthbearer)

    async def _oauth(
        self,
        mechanism: str,
        args: list[str],
        parse: Callable[[bytes], tuple[str, str] | None],
    ) -> AuthResult:
        smtp: Any = self
        if len(args) == 1:
            blob = await smtp.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await smtp.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        parsed = parse(blob)
        if parsed is None:
            await smtp.push("501 5.5.2 Malformed SASL response")
            return AuthResult(success=False, handled=True)
        mailbox, token = parsed
        options = self.context.options
        check = options.oauth
        verdict = check(mailbox, token) if check is not None else False
        accepted = verdict is True
        # The mechanism is in the recorded commands; the token is never kept.
        self.context.records.add(auth_attempt=AuthAttempt(mailbox, accepted))
        if accepted:
            return AuthResult(success=True, auth_data=mailbox)
        if mechanism == "OAUTHBEARER" or options.oauth_refusal == "google":
            # RFC 7628 3.2.2 / Gmail: the error rides in a 334 challenge; the
            # client's answer is ignored, then the final refusal.
            await smtp.challenge_auth(json.dumps(GOOGLE_CHALLENGE).encode())
            refusal = (
                GOOGLE_REFUSAL
                if options.oauth_refusal == "google"
                else MICROSOFT_REFUSAL
            )
            return AuthResult(success=False, handled=False, message=refusal)
        return AuthResult(success=False, handled=False, message=MICROSOFT_REFUSAL)
