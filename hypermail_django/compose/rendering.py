"""Render templates of any configured engine with autoescaping chosen per render.

An email mixes HTML, which must be autoescaped, with a subject and a text body,
which must not be: ``Tom & Jerry`` in a subject must not arrive as
``Tom &amp; Jerry``. Django's engines fix autoescaping per engine, so this
module renders

- Django template language templates with a ``Context(autoescape=...)``;
- Jinja2 templates through an overlay of the engine's environment that differs
  only in ``autoescape`` (cached; the engine's loaders, filters and globals are
  shared);
- templates of any other engine with ``render()``, as the engine is configured.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from django.template import Context, engines
from django.template.backends.django import DjangoTemplates
from django.template.backends.django import Template as DjangoBackendTemplate
from django.template.base import Template as DjangoTemplate
from django.template.engine import Engine

__all__ = ["Renderer", "compile_string", "render"]

Renderer = Callable[[Mapping[str, Any]], str]

_overlays: weakref.WeakKeyDictionary[Any, dict[bool, Any]] = weakref.WeakKeyDictionary()
_overlays_lock = threading.Lock()
_standalone: Engine | None = None


def render(template: Any, context: Mapping[str, Any], *, autoescape: bool) -> str:
    """Render a template from ``django.template.loader.get_template()``."""
    if isinstance(template, DjangoBackendTemplate):
        template = template.template
    if isinstance(template, DjangoTemplate):
        return template.render(Context(dict(context), autoescape=autoescape))
    jinja = _jinja_template(template)
    if jinja is not None:
        if _jinja_autoescapes(jinja.environment, jinja.name) != autoescape:
            jinja = _overlay(jinja.environment, autoescape).get_template(jinja.name)
        return str(jinja.render(dict(context)))
    return str(template.render(dict(context)))


def compile_string(code: str, *, using: str | None, autoescape: bool) -> Renderer:
    """Compile template source with the engine called ``using``.

    ``using=None`` means the first Django template language engine in
    ``TEMPLATES`` (its tag libraries available), or a bare one when the project
    configures none.
    """
    if using is None:
        dtl = _default_dtl_engine()
        compiled = dtl.from_string(code)
        return lambda context: render(compiled, context, autoescape=autoescape)
    backend = engines[using]
    if isinstance(backend, DjangoTemplates):
        compiled = backend.engine.from_string(code)
        return lambda context: render(compiled, context, autoescape=autoescape)
    env = getattr(backend, "env", None)
    if env is not None and _is_jinja_environment(env):
        jinja = _overlay(env, autoescape).from_string(code)
        return lambda context: str(jinja.render(dict(context)))
    other = backend.from_string(code)
    return lambda context: str(other.render(dict(context)))


def _default_dtl_engine() -> Engine:
    global _standalone
    try:
        return Engine.get_default()
    except Exception:  # ImproperlyConfigured: no DjangoTemplates engine
        if _standalone is None:
            _standalone = Engine()
        return _standalone


def _jinja_template(template: Any) -> Any:
    """The ``jinja2.Template`` behind a Django Jinja2 backend template, if any."""
    inner = getattr(template, "template", None)
    environment = getattr(inner, "environment", None)
    if (
        environment is not None
        and _is_jinja_environment(environment)
        and getattr(inner, "name", None)
    ):
        return inner
    return None


def _is_jinja_environment(env: Any) -> bool:
    try:
        import jinja2
    except ImportError:  # pragma: no cover - then nothing is a Jinja2 template
        return False
    return isinstance(env, jinja2.Environment)


def _jinja_autoescapes(env: Any, name: str | None) -> bool:
    setting = env.autoescape
    return bool(setting(name) if callable(setting) else setting)


def _overlay(env: Any, autoescape: bool) -> Any:
    """``env`` with autoescaping forced on or off (one overlay per setting)."""
    with _overlays_lock:
        per_env = _overlays.setdefault(env, {})
        if autoescape not in per_env:
            per_env[autoescape] = env.overlay(autoescape=autoescape)
        return per_env[autoescape]
