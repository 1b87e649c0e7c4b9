"""``EmailTemplate``: render a template string with variables (FluxMail's helper).

For a body kept in a database field or built in code, where a template file per
email would be overkill::

    welcome = EmailTemplate("<p>Hello {{ first_name }}</p>", autoescape=True)
    html = welcome.render(first_name="Alice")

Templates use Django's template language unless ``using`` names an engine in
``TEMPLATES`` (``using="jinja2"`` for Jinja2). ``autoescape`` decides
HTML-escaping for this template whatever the engine's own setting: turn it on
for HTML, leave it off for subjects and text. ``from_file()`` turns it on for
``.html`` files unless told otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..exceptions import TemplateNotFound
from .rendering import compile_string

__all__ = ["EmailTemplate"]

_HTML_SUFFIXES = {".html", ".htm", ".xhtml"}


class EmailTemplate:
    """A compiled template string; :meth:`render` it with variables.

    Syntax errors surface here, when the template is created, not when the
    first email is rendered.
    """

    def __init__(
        self, template: str, autoescape: bool = False, *, using: str | None = None
    ) -> None:
        self.template = template
        self.autoescape = autoescape
        self.using = using
        self._render = compile_string(template, using=using, autoescape=autoescape)

    def __repr__(self) -> str:
        return (
            f"<EmailTemplate {self.template[:30]!r} autoescape={self.autoescape}"
            f"{f' using={self.using!r}' if self.using else ''}>"
        )

    def render(
        self, context: Mapping[str, Any] | None = None, /, **variables: Any
    ) -> str:
        """Render with ``context`` and/or keyword ``variables`` (these win)."""
        return self._render({**(context or {}), **variables})

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        autoescape: bool | None = None,
        *,
        using: str | None = None,
        encoding: str = "utf-8",
    ) -> EmailTemplate:
        """Load a template from a file (UTF-8 by default).

        ``autoescape=None`` turns escaping on for ``.html``/``.htm`` files and
        off for the rest. A missing file raises ``TemplateNotFound`` (code
        ``template_not_found``).
        """
        file = Path(path)
        try:
            source = file.read_text(encoding=encoding)
        except FileNotFoundError:
            raise TemplateNotFound(
                f"Template file {str(file)!r} does not exist."
            ) from None
        if autoescape is None:
            autoescape = file.suffix.lower() in _HTML_SUFFIXES
        return cls(source, autoescape, using=using)
