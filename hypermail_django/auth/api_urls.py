"""The JSON API: ``path("api/", include("hypermail_django.auth.api_urls"))``.

Names (namespace ``hypermail_password_reset_api``): ``request``, ``validate``
and ``confirm``.
"""

from django.urls import path

from . import api

app_name = "hypermail_password_reset_api"

urlpatterns = [
    path("password-reset/", api.PasswordResetRequestAPIView.as_view(), name="request"),
    path(
        "password-reset/validate/",
        api.PasswordResetValidateAPIView.as_view(),
        name="validate",
    ),
    path(
        "password-reset/confirm/",
        api.PasswordResetConfirmAPIView.as_view(),
        name="confirm",
    ),
]
