"""The ``@preview`` decorator and the registry it fills.

Previews are found the way the admin finds ``admin.py``: the first time the
pages need them, ``mail_previews`` is imported from every installed app
(:func:`django.utils.module_loading.autodiscover_modules`).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from django.core.mail import EmailMessage
from django.utils.module_loading import autodiscover_modules

from ..exceptions import FluxMailException

Builder = Callable[..., EmailMessage]
F = TypeVar("F", bound=Builder)

_registry: dict[str, Preview] = {}
_lock = threading.RLock()  # @preview runs inside autodiscover()
_discovered = False


class InvalidPreview(FluxMailException, TypeError):
    """A preview function returned something that is not a Django message."""

    default_code = "invalid_preview"


@dataclass(frozen=True)
class Preview:
    """One registered preview: ``slug`` is ``<module>.<function>``."""

    slug: str
    name: str
    description: str
    group: str
    func: Builder

    def build(self, request: Any = None) -> EmailMessage:
        """Call the function (with ``request`` if it takes an argument)."""
        takes_request = bool(inspect.signature(self.func).parameters)
        message = self.func(request) if takes_request else self.func()
        if not isinstance(message, EmailMessage):
            raise InvalidPreview(
                f"The mail preview {self.slug!r} returned {type(message).__name__}; "
                "a preview function must return a Django EmailMessage (or "
                "EmailMultiAlternatives, HypermailMessage...)."
            )
        return message


@overload
def preview(func: F) -> F: ...


@overload
def preview(
    func: None = None, *, name: str | None = None, description: str | None = None
) -> Callable[[F], F]: ...


def preview(
    func: F | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
) -> F | Callable[[F], F]:
    """Register a function returning a message with sample data as a preview.

    Use bare (``@preview``) or with a display ``name`` and ``description``
    (default: the function's name and the first line of its docstring). The
    function takes no argument, or the current request.
    """

    def register(f: F) -> F:
        module = f.__module__
        group = module.removesuffix(".mail_previews")
        doc = (inspect.getdoc(f) or "").strip().splitlines()
        entry = Preview(
            slug=f"{group}.{f.__name__}",
            name=name or f.__name__.replace("_", " ").capitalize(),
            description=description if description is not None else (doc or [""])[0],
            group=group,
            func=f,
        )
        with _lock:
            _registry[entry.slug] = entry
        return f

    return register(func) if func is not None else register


def autodiscover() -> None:
    """Import ``mail_previews`` from every installed app (once; again after a
    module failed to import, so that fixing it is enough)."""
    global _discovered
    with _lock:
        if not _discovered:
            autodiscover_modules("mail_previews")
            _discovered = True


def get_previews() -> list[Preview]:
    """Every registered preview, by group and name."""
    autodiscover()
    return sorted(_registry.values(), key=lambda p: (p.group, p.name))


def get_preview(slug: str) -> Preview | None:
    autodiscover()
    return _registry.get(slug)
