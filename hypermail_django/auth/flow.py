"""A reset request, as both the HTML form and the JSON API handle it.

Everything here runs in the request and is the same for every address:
build the link template (checking the host), count the request against the
rate limits, hand the address to a background job. No user is looked up, no
email is rendered, nothing is sent -- so neither the answer nor its timing
says whether an account exists.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import translation

from ..conf.password_reset import get_settings
from .delivery import ResetJob, dispatch
from .links import HTML_NAMESPACE, absolute_url_template, confirm_view_template
from .ratelimit import exceeded_limits

__all__ = ["request_password_reset"]

logger = logging.getLogger("hypermail_django.auth")


def request_password_reset(
    request: Any,
    email: str,
    *,
    reset_url_template: str | None = None,
    from_email: str | None = None,
    using: str | None = None,
    namespace: str = HTML_NAMESPACE,
) -> bool:
    """Start a reset for ``email`` if the rate limits allow; never say more.

    The link template is ``reset_url_template``, else
    ``HYPERMAIL_PASSWORD_RESET_URL_TEMPLATE``, else the HTML confirm view in
    ``namespace``. Returns whether a job was handed over (False: a rate limit
    was exceeded) -- for logs and tests only: callers must answer the same
    either way.
    """
    conf = get_settings()
    if reset_url_template is not None:
        template, where = reset_url_template, "reset_url_template"
    elif conf.url_template is not None:
        template, where = conf.url_template, "HYPERMAIL_PASSWORD_RESET_URL_TEMPLATE"
    else:
        template, where = confirm_view_template(namespace), "the confirm view's URL"
    job = ResetJob(
        email=email,
        url_template=absolute_url_template(template, request, where=where),
        language=translation.get_language(),
        from_email=from_email,
        using=using,
    )
    exceeded = exceeded_limits(request, email, conf)
    if exceeded:
        logger.warning(
            "Password reset request over the per-%s rate limit: no email sent.",
            " and per-".join(exceeded),
        )
        return False
    dispatch(job, conf)
    return True
