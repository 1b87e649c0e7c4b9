"""The HTML reset pages: ``path("accounts/", include("hypermail_django.auth.urls"))``.

Names (namespace ``hypermail_password_reset``): ``request``, ``done``,
``confirm`` (``uidb64``, ``token``) and ``complete``.
"""

from django.urls import path

from . import views

app_name = "hypermail_password_reset"

urlpatterns = [
    path("password-reset/", views.PasswordResetRequestView.as_view(), name="request"),
    path("password-reset/done/", views.PasswordResetDoneView.as_view(), name="done"),
    path(
        "password-reset/complete/",
        views.PasswordResetCompleteView.as_view(),
        name="complete",
    ),
    path(
        "password-reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="confirm",
    ),
]
