"""Reset links: where they point, and where their scheme and host come from.

A link template holds ``{uid}`` and ``{token}``. Its scheme and host come from,
in order: the template itself when it is absolute (an SPA's
``https://app.example.com/reset/{uid}/{token}/``), the
``HYPERMAIL_PASSWORD_RESET_BASE_URL`` setting, or the request -- and from the
request only through ``request.get_host()``, which checks ``ALLOWED_HOSTS``
(a host it does not allow is a 400 Bad Request). A project whose
``ALLOWED_HOSTS`` contains ``'*'`` checks nothing, so there the request is not
used at all: an attacker could otherwise make us mail a victim a link to the
attacker's own host (host-header poisoning).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from ..conf.password_reset import check_url_template, get_settings
from ..exceptions import ConfigurationError
from .tokens import ResetToken

#: The namespace of ``hypermail_django.auth.urls`` (its ``app_name``).
HTML_NAMESPACE = "hypermail_password_reset"


def is_absolute(template: str) -> bool:
    """Whether the template names its own scheme and host."""
    parts = urlsplit(template)
    return bool(parts.scheme and parts.netloc)


def absolute_url_template(
    template: str, request: Any | None = None, *, where: str = "reset_url_template"
) -> str:
    """``template`` with a scheme and host, chosen by the rules above.

    ``where`` names the setting or argument the template came from, for the
    error a bad one raises.
    """
    check_url_template(template, where)
    if is_absolute(template):
        return template
    base_url = get_settings().base_url
    if base_url is not None:
        return base_url + template
    if request is None:
        raise ConfigurationError(
            f"{where} is a path ({template!r}) and there is no request to take "
            "the scheme and host from. Set HYPERMAIL_PASSWORD_RESET_BASE_URL "
            "(such as 'https://www.example.com'), pass request=, or make the "
            "template an absolute URL."
        )
    return request_origin(request) + template


def request_origin(request: Any) -> str:
    """``scheme://host`` of ``request``, once ``ALLOWED_HOSTS`` has vouched
    for the host (``get_host()`` raises ``DisallowedHost`` otherwise)."""
    host = request.get_host()
    if "*" in settings.ALLOWED_HOSTS:
        raise ConfigurationError(
            "ALLOWED_HOSTS contains '*', so the Host header of a request is not "
            "checked and cannot be trusted for password-reset links (anyone "
            "could make us mail a link to their own host). Set "
            "HYPERMAIL_PASSWORD_RESET_BASE_URL to your site's URL, or list your "
            "hosts in ALLOWED_HOSTS."
        )
    return f"{'https' if request.is_secure() else 'http'}://{host}"


def confirm_view_template(namespace: str = HTML_NAMESPACE) -> str:
    """The path of the HTML confirm view, with ``{uid}`` and ``{token}`` left
    in for :func:`format_reset_url`."""
    try:
        path = reverse(
            f"{namespace}:confirm", kwargs={"uidb64": "{uid}", "token": "{token}"}
        )
    except NoReverseMatch as exc:
        raise ConfigurationError(
            "Reset links point to the HTML confirm view by default, but no URL "
            f"named {namespace!r}:confirm is mounted. Include "
            "'hypermail_django.auth.urls' in your URLconf, or set "
            "HYPERMAIL_PASSWORD_RESET_URL_TEMPLATE (such as "
            "'https://app.example.com/reset/{uid}/{token}/')."
        ) from exc
    # reverse() percent-encodes the braces of the placeholders.
    return path.replace("%7Buid%7D", "{uid}").replace("%7Btoken%7D", "{token}")


def format_reset_url(template: str, reset_token: ResetToken) -> str:
    """Fill ``{uid}`` and ``{token}`` in (and nothing else: a template may hold
    other braces)."""
    return template.replace("{uid}", reset_token.uid).replace(
        "{token}", reset_token.token
    )
