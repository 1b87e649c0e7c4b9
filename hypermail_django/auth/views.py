"""The server-rendered reset pages: request, "check your inbox", confirm, done.

Mounted with ``include("hypermail_django.auth.urls")`` (namespace
``hypermail_password_reset``); their templates live under
``hypermail_django/password_reset/`` and extend its ``base.html``, which a
project overrides to use its own layout.

The request page never sends in the request (see ``flow.py``). The confirm
page is Django's own ``PasswordResetConfirmView``: the token moves from the
URL into the session and the browser is redirected before any page renders.
Every response to a URL holding a token (that redirect, and the "invalid
link" page) carries ``Referrer-Policy: no-referrer``, so the token cannot
leak through the ``Referer`` header. The new-password form, whose URL holds no
token, carries ``same-origin`` instead: under ``no-referrer`` browsers send
``Origin: null`` with the form's POST, which Django's CSRF check rightly
refuses. Those pages need Django's session middleware.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.generic.edit import FormView

from ..conf.password_reset import get_settings
from .flow import request_password_reset
from .forms import PasswordResetRequestForm
from .links import HTML_NAMESPACE, confirm_view_template
from .tokens import user_from_uid

__all__ = [
    "PasswordResetCompleteView",
    "PasswordResetConfirmView",
    "PasswordResetDoneView",
    "PasswordResetRequestView",
]

TEMPLATES = "hypermail_django/password_reset/"


class NamespacedMixin:
    """Reverse sibling views in the namespace this view was mounted under,
    so the URLs can be included more than once."""

    request: Any

    @property
    def namespace(self) -> str:
        match = getattr(self.request, "resolver_match", None)
        return (match.namespace if match else None) or HTML_NAMESPACE

    def sibling_url(self, name: str) -> str:
        return reverse(f"{self.namespace}:{name}")


@method_decorator([login_not_required, csrf_protect, never_cache], name="dispatch")
class PasswordResetRequestView(
    NamespacedMixin, auth_views.PasswordContextMixin, FormView
):
    """Ask for an address; answer "check your inbox" whatever it is."""

    form_class = PasswordResetRequestForm
    template_name = TEMPLATES + "form.html"
    title = _("Password reset")
    #: Link template; None: ``HYPERMAIL_PASSWORD_RESET_URL_TEMPLATE``, then
    #: this app's confirm view.
    reset_url_template: str | None = None
    #: Sender; None: ``HYPERMAIL_PASSWORD_RESET_FROM_EMAIL``, then
    #: ``DEFAULT_FROM_EMAIL``.
    from_email: str | None = None

    def get_reset_url_template(self) -> str:
        return (
            self.reset_url_template
            or get_settings().url_template
            or confirm_view_template(self.namespace)
        )

    def form_valid(self, form: PasswordResetRequestForm) -> HttpResponse:
        request_password_reset(
            self.request,
            form.cleaned_data["email"],
            reset_url_template=self.get_reset_url_template(),
            from_email=self.from_email,
        )
        return super().form_valid(form)

    def get_success_url(self) -> str:
        return self.sibling_url("done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    """ "Check your inbox", the same page for every address."""

    template_name = TEMPLATES + "done.html"


@method_decorator(login_not_required, name="dispatch")
class PasswordResetConfirmView(NamespacedMixin, auth_views.PasswordResetConfirmView):
    """Django's confirm view: token to session, redirect, new-password form.

    Inactive users are treated as unknown. Responses get a ``Referrer-Policy``
    of ``no-referrer``, or ``same-origin`` for the new-password form (see the
    module's docstring).
    """

    template_name = TEMPLATES + "confirm.html"
    invalid_template_name = TEMPLATES + "invalid.html"

    def dispatch(self, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = super().dispatch(*args, **kwargs)
        form_page = self.validlink and kwargs.get("token") == self.reset_url_token
        response.headers["Referrer-Policy"] = (
            "same-origin" if form_page else "no-referrer"
        )
        return response

    def get_user(self, uidb64: str) -> Any:
        return user_from_uid(uidb64)

    def get_template_names(self) -> list[str]:
        if getattr(self, "validlink", False):
            return [self.template_name]
        return [self.invalid_template_name]

    def get_success_url(self) -> str:
        return self.sibling_url("complete")

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context: dict[str, Any] = super().get_context_data(**kwargs)
        context["request_url"] = self.sibling_url("request")
        return context


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    """ "Your password has been set", with a link to ``LOGIN_URL``."""

    template_name = TEMPLATES + "complete.html"
