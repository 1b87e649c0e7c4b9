"""The JSON API for single-page apps: request, validate, confirm.

Every endpoint takes a JSON object (``Content-Type: application/json``) by
POST and answers JSON. Errors have one shape, Django's
``form.errors.get_json_data()`` under ``"errors"``::

    {"errors": {"new_password": [{"message": "This password is too common.",
                                  "code": "password_too_common"}]}}

CSRF: the endpoints are exempt from Django's CSRF check, and safe so. CSRF
abuses a browser's ambient credentials, and these endpoints use none: they
read no cookie or session and log nobody in; what they need -- an address, or
a uid/token pair -- is in the body. They also accept only
``application/json`` (anything else is 415), which a page on another origin
cannot send without a CORS preflight that your CORS policy decides on.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from .flow import request_password_reset
from .forms import PasswordResetRequestForm, ResetTokenForm, SetNewPasswordForm

__all__ = [
    "PasswordResetConfirmAPIView",
    "PasswordResetRequestAPIView",
    "PasswordResetValidateAPIView",
]

#: The one answer to every well-formed reset request.
REQUEST_ACCEPTED = {
    "detail": _(
        "If an account with this email address exists, we have sent it an "
        "email with a link to reset its password."
    )
}


def _error(status: int, message: str, code: str) -> JsonResponse:
    return JsonResponse(
        {"errors": {"__all__": [{"message": message, "code": code}]}}, status=status
    )


@method_decorator([csrf_exempt, login_not_required, never_cache], name="dispatch")
class JsonFormView(View):
    """POST a JSON object; it is validated by :attr:`form_class`, then
    :meth:`form_valid` answers. Other methods get 405."""

    http_method_names = ["post"]
    form_class: type[forms.Form] = forms.Form

    def post(self, request: HttpRequest) -> HttpResponse:
        if request.content_type != "application/json":
            return _error(
                415,
                "Send the request body as JSON, with Content-Type: application/json.",
                "unsupported_media_type",
            )
        try:
            data = json.loads(request.body)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8
            return _error(
                400, f"The request body is not valid JSON: {exc}", "invalid_json"
            )
        if not isinstance(data, dict):
            return _error(
                400, "The request body must be a JSON object.", "invalid_json"
            )
        # A field that is not a string is an error of its own; the form only
        # sees the strings (so a number is never coerced into a uid).
        strings = {key: value for key, value in data.items() if isinstance(value, str)}
        form = self.form_class(data=strings)
        valid = form.is_valid()
        wrong = [name for name in form.fields if name in data and name not in strings]
        for name in wrong:
            form.errors[name] = form.error_class(
                [forms.ValidationError(_("Must be a string."), code="invalid")]
            )
        if wrong or not valid:
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        return self.form_valid(form)

    def form_valid(self, form: Any) -> HttpResponse:
        raise NotImplementedError


class PasswordResetRequestAPIView(JsonFormView):
    """``{"email"}`` -> 202 with one body, whether or not the account exists,
    and whether or not a rate limit was exceeded."""

    form_class = PasswordResetRequestForm
    #: Link template for this view; None: the setting, then the HTML view.
    reset_url_template: str | None = None

    def form_valid(self, form: Any) -> HttpResponse:
        request_password_reset(
            self.request,
            form.cleaned_data["email"],
            reset_url_template=self.reset_url_template,
        )
        return JsonResponse(REQUEST_ACCEPTED, status=202)


class PasswordResetValidateAPIView(JsonFormView):
    """``{"uid", "token"}`` -> 200 if the pair can still set a password, else
    400 (before showing the user a new-password form)."""

    form_class = ResetTokenForm

    def form_valid(self, form: Any) -> HttpResponse:
        return JsonResponse({"valid": True})


class PasswordResetConfirmAPIView(JsonFormView):
    """``{"uid", "token", "new_password"}`` -> 200 once the password is set,
    or 400 with the validators' errors under ``new_password``."""

    form_class = SetNewPasswordForm

    def form_valid(self, form: Any) -> HttpResponse:
        form.save()
        return JsonResponse({"detail": _("Your password has been set.")})
