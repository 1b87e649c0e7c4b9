"""Previews of the emails this package ships (see ``hypermail_django.previews``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage

from .previews import preview


@preview(
    name="Password reset",
    description="The reset link email of hypermail_django.auth, for a sample user.",
)
def password_reset() -> EmailMessage:
    from .auth.emails import password_reset_message

    user_model: Any = get_user_model()
    user = user_model(
        pk=1,
        **{
            user_model.USERNAME_FIELD: "alice",
            user_model.get_email_field_name(): "alice@example.com",
        },
    )
    user.set_unusable_password()
    return password_reset_message(
        user,
        reset_url_template="https://www.example.com/accounts/password-reset/{uid}/{token}/",
    )
