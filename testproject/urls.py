"""The test project's URLs: the password-reset pages and API, and a login page.

- ``/`` shows who is logged in;
- ``/accounts/login/``, ``/accounts/logout/``: Django's own views;
- ``/accounts/password-reset/...``: ``hypermail_django.auth.urls``;
- ``/api/password-reset/...``: ``hypermail_django.auth.api_urls``.
"""

from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import TemplateView

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/", include("hypermail_django.auth.urls")),
    path("api/", include("hypermail_django.auth.api_urls")),
]
