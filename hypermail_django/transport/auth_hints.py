"""What to do about an AUTH refusal from Microsoft 365 or Gmail.

Their enhanced status codes say precisely what is wrong, in words that do not
say where to fix it. ``manage.py mailcheck`` prints these next to the reply.
"""

from __future__ import annotations

#: (SMTP code or None for any, enhanced status code, fix), most specific first.
_FIXES: tuple[tuple[int | None, str, str], ...] = (
    (
        None,
        "5.7.139",
        "SMTP AUTH is disabled for the tenant or for the mailbox. Enable it "
        "for the mailbox: Set-CASMailbox -Identity <mailbox> "
        "-SmtpClientAuthenticationDisabled $false (Exchange Online PowerShell), "
        "or in the Microsoft 365 admin center: Users > Active users > the "
        "mailbox > Mail > Manage email apps > Authenticated SMTP; or for the "
        "tenant: Set-TransportConfig -SmtpClientAuthenticationDisabled $false. "
        "See docs/oauth2-microsoft.md.",
    ),
    (
        None,
        "5.7.30",
        "Basic authentication (a password) is disabled for this tenant: set "
        "auth_mechanism='xoauth2', remove the password, and set token_provider "
        "to MicrosoftClientCredentials. See docs/oauth2-microsoft.md.",
    ),
    (
        535,
        "5.7.3",
        "Exchange Online refused the token: the app registration lacks the "
        "SMTP.SendAsApp application permission (with admin consent), or its "
        "service principal was not registered (New-ServicePrincipal) or not "
        "granted this mailbox (Add-MailboxPermission -AccessRights FullAccess), "
        "or username is not that mailbox. See docs/oauth2-microsoft.md.",
    ),
    (
        534,
        "5.7.9",
        "Gmail does not take the account password: use OAuth2 "
        "(auth_mechanism='xoauth2' with GoogleServiceAccount or RefreshToken, "
        "see docs/oauth2-google.md), or an app password of an account with "
        "2-Step Verification.",
    ),
    (
        535,
        "5.7.8",
        "The server refused the credentials. For Gmail with OAuth2: the service "
        "account's client ID needs domain-wide delegation with the scope "
        "https://mail.google.com/ (Admin console > Security > API controls), "
        "and username must be the mailbox the token was issued for. See "
        "docs/oauth2-google.md.",
    ),
)


def auth_fix(code: int | None, reply: str | bytes | None) -> str | None:
    """The fix for a refusal ``code``/``reply``, or None when it is not one we know."""
    if code is None or not reply:
        return None
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    for wanted, status, fix in _FIXES:
        if (wanted is None or wanted == code) and status in text.split():
            return fix
    return None
