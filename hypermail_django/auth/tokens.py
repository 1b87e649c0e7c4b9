"""Reset tokens: Django's ``PasswordResetTokenGenerator``, nothing home-made.

A token is an HMAC (keyed by ``SECRET_KEY``) of the user's primary key,
password hash, last login, email and a timestamp. So it stops working when the
password changes (the reset itself included), when the user logs in, when the
email changes, and after ``PASSWORD_RESET_TIMEOUT`` seconds. Nothing is stored.
The uid is the primary key in URL-safe base64, as in Django's own views.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.views.decorators.debug import sensitive_variables

__all__ = [
    "ResetToken",
    "can_reset_password",
    "check_reset_token",
    "generate_reset_token",
    "user_from_uid",
]


class ResetToken(NamedTuple):
    """The two parts of a reset link: ``uid`` (the encoded primary key) and
    ``token``. Neither is secret alone; together they let anyone set the
    password, so treat the pair like a password."""

    uid: str
    token: str

    def __repr__(self) -> str:
        # Never the token: reprs end up in logs and error reports.
        return f"ResetToken(uid={self.uid!r}, token=<hidden>)"


def can_reset_password(user: Any) -> bool:
    """Whether ``user`` may reset a password: active, with a usable password
    and an email address (the rule of Django's ``PasswordResetForm``)."""
    email_field = user.get_email_field_name()
    return (
        bool(getattr(user, "is_active", True))
        and user.has_usable_password()
        and bool(getattr(user, email_field, None))
    )


@sensitive_variables("token")
def generate_reset_token(user: Any) -> ResetToken:
    """Return the encoded uid and a fresh token for ``user``."""
    token = default_token_generator.make_token(user)
    return ResetToken(urlsafe_base64_encode(force_bytes(user.pk)), token)


def user_from_uid(uid: str) -> Any | None:
    """The active user whose encoded primary key is ``uid``, or None.

    An inactive user is treated as unknown: a link mailed before the account
    was deactivated must not reopen it.
    """
    user_model = get_user_model()
    try:
        pk = user_model._meta.pk.to_python(urlsafe_base64_decode(uid).decode())
        user = user_model._default_manager.get(pk=pk)
    except (
        TypeError,
        ValueError,
        OverflowError,
        user_model.DoesNotExist,
        ValidationError,
    ):
        return None
    return user if getattr(user, "is_active", True) else None


@sensitive_variables("token")
def check_reset_token(uid: str, token: str) -> Any | None:
    """Return the user ``uid`` and ``token`` belong to, or None when the pair
    is malformed, unknown, expired or already used, or the user is inactive.

    The comparison is constant-time (Django's ``check_token``).
    """
    if not isinstance(uid, str) or not isinstance(token, str):
        return None
    user = user_from_uid(uid)
    if user is None or not default_token_generator.check_token(user, token):
        return None
    return user
