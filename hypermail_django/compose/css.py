"""CSS inlining: move ``<style>`` rules into ``style`` attributes, as mail clients need.

Gmail drops ``<head>`` styles in some views and Outlook ignores most of them, so
HTML email keeps its look only when every rule sits on the element it styles.
An *inliner* is any callable ``(html: str) -> str``. Two ship here:

- ``"css_inline"`` (the default): the css-inline package, written in Rust, about
  80x faster than premailer on the same email and maintained.
- ``"premailer"``: for projects that depend on premailer's exact output
  (``pip install hypermail-django[premailer]``).

Both keep ``@media`` rules in a ``<style>`` block (they cannot be inlined, and
responsive layouts need them) and never fetch anything over the network: a
``<link rel="stylesheet">`` is not loaded. A dotted path to your own callable
works too.

A message whose HTML was inlined is marked (:data:`INLINED_MARK`) so that a
backend with ``css_inline`` on does not inline it a second time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.utils.module_loading import import_string

from ..exceptions import ConfigurationError, CSSInlineError

Inliner = Callable[[str], str]

#: Attribute set to True on a message whose HTML has been inlined.
INLINED_MARK = "hypermail_css_inlined"

#: The engine used when none is named.
DEFAULT_INLINER = "css_inline"


def css_inline_engine(html: str) -> str:
    """Inline with css-inline; keep ``@media`` rules, load nothing remote or local."""
    import css_inline

    try:
        return _css_inliner().inline(html)
    except css_inline.InlineError as exc:  # pragma: no cover - malformed CSS
        raise CSSInlineError(f"css-inline could not inline this HTML: {exc}") from exc


@functools.cache
def _css_inliner() -> Any:
    import css_inline

    # keep_at_rules: @media queries stay in a <style> block for responsive mail.
    # load_remote_stylesheets=False: a <link> is dropped, never fetched -- also
    # not from the local disk, which would be a file-read primitive for HTML
    # that contains user input.
    return css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def premailer_engine(html: str) -> str:
    """Inline with premailer, with network access off (it has no timeout)."""
    try:
        from premailer import Premailer
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ConfigurationError(
            "The 'premailer' CSS inliner needs premailer: "
            "pip install 'hypermail-django[premailer]'."
        ) from exc
    try:
        return str(Premailer(html, allow_network=False).transform())
    except Exception as exc:  # premailer raises many unrelated types
        raise CSSInlineError(f"premailer could not inline this HTML: {exc}") from exc


#: Engines known by name; anything else is a dotted path or a callable.
ENGINES: dict[str, Inliner] = {
    "css_inline": css_inline_engine,
    "premailer": premailer_engine,
}


def get_inliner(engine: str | Inliner | None = None) -> Inliner:
    """The inliner for ``engine``: a name in :data:`ENGINES`, a dotted path to a
    callable, or a callable. None means the default, css-inline.

    Raises ``ConfigurationError`` naming what could not be used.
    """
    if engine is None:
        engine = DEFAULT_INLINER
    if callable(engine):
        return engine
    if not isinstance(engine, str):
        raise ConfigurationError(
            f"A CSS inliner must be 'css_inline', 'premailer', a dotted path or a "
            f"callable, got {engine!r}."
        )
    if engine in ENGINES:
        if engine == "premailer":
            _require_premailer()
        return ENGINES[engine]
    if "." not in engine:
        raise ConfigurationError(
            f"Unknown CSS inliner {engine!r}: use 'css_inline', 'premailer' or the "
            "dotted path of a callable that takes and returns an HTML string."
        )
    try:
        found = import_string(engine)
    except ImportError as exc:
        raise ConfigurationError(
            f"CSS inliner {engine!r} cannot be imported: {exc}"
        ) from None
    if not callable(found):
        raise ConfigurationError(f"CSS inliner {engine!r} is not callable.")
    return found


def _require_premailer() -> None:
    try:
        import premailer  # noqa: F401
    except ImportError:
        raise ConfigurationError(
            "The 'premailer' CSS inliner needs premailer: "
            "pip install 'hypermail-django[premailer]'."
        ) from None


def inline_css(html: str, engine: str | Inliner | None = None) -> str:
    """Return ``html`` with its ``<style>`` rules moved into ``style`` attributes.

    ``@media`` rules stay in a ``<style>`` block. Raises ``CSSInlineError``
    (code ``css_inline_failed``) when the engine cannot process the HTML.
    """
    inliner = get_inliner(engine)
    result = inliner(html)
    if not isinstance(result, str):
        raise CSSInlineError(
            f"The CSS inliner {engine!r} returned {type(result).__name__}, not str."
        )
    return result


def is_inlined(message: Any) -> bool:
    """True when ``message``'s HTML was already inlined (by itself or a backend)."""
    return bool(getattr(message, INLINED_MARK, False))


def inline_message(message: Any, engine: str | Inliner | None = None) -> bool:
    """Inline the CSS of every HTML part of a Django message, once.

    Covers ``text/html`` alternatives and a body whose ``content_subtype`` is
    ``"html"``. The message is changed in place and marked, so the same message
    sent again (or through a second backend) is not inlined twice. Returns
    whether anything was inlined.
    """
    if is_inlined(message):
        return False
    from django.core.mail.message import EmailAlternative

    inliner = get_inliner(engine)
    changed = False
    if getattr(message, "content_subtype", None) == "html" and message.body:
        message.body = inline_css(message.body, inliner)
        changed = True
    alternatives = getattr(message, "alternatives", None) or []
    for index, alternative in enumerate(alternatives):
        content, mimetype = alternative
        if mimetype == "text/html" and isinstance(content, str):
            alternatives[index] = EmailAlternative(
                inline_css(content, inliner), mimetype
            )
            changed = True
    if changed:
        setattr(message, INLINED_MARK, True)
    return changed
