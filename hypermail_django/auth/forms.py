"""Forms for the reset flow, shared by the HTML views and the JSON API.

The HTML confirm page uses Django's own ``SetPasswordForm`` (two password
fields); the API takes one ``new_password`` in :class:`SetNewPasswordForm`.
Both run ``AUTH_PASSWORD_VALIDATORS`` with the user, so similarity checks see
the account.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_variables

from .tokens import check_reset_token

__all__ = ["PasswordResetRequestForm", "ResetTokenForm", "SetNewPasswordForm"]

INVALID_TOKEN_MESSAGE = _(
    "The password reset link is invalid or has expired. Please request a new one."
)


class PasswordResetRequestForm(forms.Form):
    """The address to send a reset link to. Says nothing about accounts."""

    email = forms.EmailField(
        label=_("Email"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )


class ResetTokenForm(forms.Form):
    """A uid/token pair; valid when it opens an account (then :attr:`user`)."""

    uid = forms.CharField(max_length=64)
    token = forms.CharField(max_length=128)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user: Any = None

    @sensitive_variables("cleaned")
    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        uid, token = cleaned.get("uid"), cleaned.get("token")
        if uid and token:
            self.user = check_reset_token(uid, token)
            if self.user is None:
                self.add_error(
                    "token",
                    ValidationError(INVALID_TOKEN_MESSAGE, code="invalid_token"),
                )
        return cleaned


class SetNewPasswordForm(ResetTokenForm):
    """A uid/token pair and the new password, checked by the validators."""

    new_password = forms.CharField(strip=False)

    @sensitive_variables("cleaned", "password")
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        password = cleaned.get("new_password")
        if self.user is not None and password:
            try:
                password_validation.validate_password(password, self.user)
            except ValidationError as error:
                self.add_error("new_password", error)
        return cleaned

    @sensitive_variables("password")
    def save(self) -> Any:
        """Set the password; the token (and every other one) stops working."""
        password = self.cleaned_data["new_password"]
        self.user.set_password(password)
        self.user.save()
        password_validation.password_changed(password, self.user)
        return self.user
