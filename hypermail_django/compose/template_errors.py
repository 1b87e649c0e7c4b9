"""``TemplateNotFound``, kept apart so importing ``exceptions`` stays cheap.

Import it from ``hypermail_django.exceptions`` like every other error.
"""

from __future__ import annotations

from typing import Any

from django.template import TemplateDoesNotExist

from ..transport.errors import FluxMailException


class TemplateNotFound(FluxMailException, TemplateDoesNotExist):
    """A templated email lacks a template it needs (its subject, or any body).

    Also a Django ``TemplateDoesNotExist``, so existing handlers (and Django's
    debug page, which reads ``tried`` and ``chain``) keep working.
    """

    default_code = "template_not_found"

    def __init__(
        self,
        message: str,
        code: str | None = None,
        *,
        tried: list[Any] | None = None,
        chain: list[Exception] | None = None,
    ) -> None:
        FluxMailException.__init__(self, message, code)
        self.tried = tried or []
        self.backend = None
        self.chain = chain or []
