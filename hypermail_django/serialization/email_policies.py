"""Email policies that serialize the same bytes as the standard ones, faster.

On Django 6.0+ a message is built under a modern email policy, which costs
Django 6.x about 2.4 ms of CPU for an ordinary 4 KB message, twice the rest of
a pooled send. Three things in the standard library's header handling repeat
work that :class:`CachingHeaderRegistry` does once instead:

* ``HeaderRegistry`` builds a brand-new class with ``type()`` for every header
  it parses (about 27 per message); the classes for one header name are
  interchangeable, so each is built once.
* Every message of a batch parses the same ``From``, ``MIME-Version``,
  ``Content-Type: text/plain; charset="utf-8"``...; headers are immutable
  ``str`` subclasses, so one parsed from the same name and text is reused.
* Folding a header for output is a pure function of the header and the policy,
  so a reused header is folded once per policy.
* The multipart ``Content-Type`` carries the boundary the generator draws for
  each message; it is parsed and folded once with a stand-in of the same
  shape, which each message's header then carries its own boundary in place of.

Parsing, folding and encoding are still the standard library's: the tests
compare the bytes with the stock policies', message by message. Together they
halve the cost of building and serializing on Django 6.1.
"""

from __future__ import annotations

import email.policy
import functools
import re
from collections.abc import Callable
from email._policybase import Compat32
from email.headerregistry import BaseHeader, HeaderRegistry
from typing import Any

__all__ = ["COMPAT32", "SMTP", "SMTPUTF8", "CachingHeaderRegistry", "ReusingCompat32"]

#: Headers kept for reuse, at most, and the longest text kept.
_MOST_REUSED = 1024
_LONGEST_REUSED = 998  # RFC 5322's line limit: the usual header fits


def _reused(
    cache: dict[Any, Any], key: tuple[Any, ...], make: Callable[[], Any]
) -> Any:
    """``cache[key]``, made by ``make()`` the first time. ``key[1]`` is the
    header's text: only plain ``str`` texts of a usual length are kept, and the
    cache is bounded (emptied when full: what repeats comes back at once)."""
    text = key[1]
    if type(text) is not str or len(text) > _LONGEST_REUSED:
        return make()
    made = cache.get(key)
    if made is None:
        made = cache[key] = make()
        if len(cache) > _MOST_REUSED:
            cache.clear()
    return made


class CachingHeaderRegistry(HeaderRegistry):
    """A :class:`~email.headerregistry.HeaderRegistry` that builds each header
    class once instead of once per header."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._classes: dict[str, type] = {}
        self._parsed: dict[tuple[str, str], Any] = {}

    def map_to_type(self, name: str, cls: type) -> None:
        super().map_to_type(name, cls)
        self._classes.pop(name.lower(), None)
        self._parsed.clear()

    def __call__(self, name: str, value: Any) -> Any:
        """The parsed header; one parsed before from the same name and text is
        reused (headers are immutable ``str`` subclasses), so the ``From``,
        ``MIME-Version`` and ``Content-Type`` every message of a batch repeats
        are parsed once."""
        if type(value) is str and (drawn := _DRAWN_BOUNDARY.fullmatch(value)):
            return self._with_boundary(name, value, drawn[1], drawn[2])
        parse = functools.partial(HeaderRegistry.__call__, self, name, value)
        return _reused(self._parsed, (name, value), parse)

    def _with_boundary(self, name: str, value: str, head: str, boundary: str) -> Any:
        """A multipart ``Content-Type`` with the boundary the generator drew
        for this message (``set_boundary`` writes it after Django built the
        message): different in every message, so never reused as a whole, and
        parsing it is a sixth of serializing a message on Django 6.x.

        The boundary is a quoted word of digits and ``=``: the parser and the
        folder treat it as any word of the same length of those characters.
        So the value is parsed (and folded) once with a fixed stand-in, and
        this message's header is that one with the stand-in replaced by the
        boundary: in its text, its parameters, and (see :func:`_fold_once`)
        its folded form. Anything unexpected (a defect...) gets the full parse."""
        stand_in_value = head + _STAND_IN
        parse = functools.partial(HeaderRegistry.__call__, self, name, stand_in_value)
        stand_in = _reused(self._parsed, (name, stand_in_value), parse)
        text = str(stand_in)
        token = _STAND_IN[:-1]
        if text.count(token) != 1 or stand_in.defects:
            return HeaderRegistry.__call__(self, name, value)
        header = str.__new__(type(stand_in), text.replace(token, boundary))
        header.__dict__.update(stand_in.__dict__)
        header.__dict__.pop("_folded", None)
        params = getattr(stand_in, "_params", None)
        if isinstance(params, dict):
            header._params = {
                key: param.replace(token, boundary) for key, param in params.items()
            }
        header._boundary = (stand_in, token, boundary, self, value)
        return header

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        try:
            return self._classes[key]
        except KeyError:
            pass
        # What HeaderRegistry builds, plus folding remembered per header.
        cls = self.registry.get(key, self.default_class)
        built = type("_" + cls.__name__, (cls, self.base_class), {"fold": _fold_once})
        # Two threads may both build it; either class is as good.
        return self._classes.setdefault(key, built)


def _fold_once(header: Any, *, policy: Any) -> str:
    """``BaseHeader.fold``, computed once per header and policy: a reused
    header (see ``CachingHeaderRegistry.__call__``) is written by every message
    that carries it."""
    folded = header.__dict__.get("_folded")
    if folded is not None and folded[0] is policy:
        return str(folded[1])
    with_boundary = header.__dict__.get("_boundary")
    if with_boundary is not None:
        return _fold_with_boundary(*with_boundary, policy=policy)
    text = BaseHeader.fold(header, policy=policy)
    header._folded = (policy, text)
    return text


def _fold_with_boundary(
    stand_in: Any, token: str, boundary: str, registry: Any, value: str, *, policy: Any
) -> str:
    """A header made by ``CachingHeaderRegistry._with_boundary``, folded: its
    stand-in's folded text (folded once per policy) with the boundary in
    place of the stand-in; the full parse and fold if the folder split it."""
    text = str(stand_in.fold(policy=policy))
    if text.count(token) == 1:
        return text.replace(token, boundary)
    return str(
        HeaderRegistry.__call__(registry, stand_in.name, value).fold(policy=policy)
    )


#: ``email.policy.SMTP`` and ``SMTPUTF8`` with the caching header factory.
SMTP = email.policy.SMTP.clone(header_factory=CachingHeaderRegistry())
SMTPUTF8 = email.policy.SMTPUTF8.clone(header_factory=CachingHeaderRegistry())


class ReusingCompat32(Compat32):
    """``compat32``, what Django 5.2 builds with, folding a header it has
    folded before from a cache instead of encoding it again.

    Django 5.2 serializes with ``as_bytes(linesep="\\r\\n")``, which clones the
    policy for every message, so the cache is keyed by what ``_fold`` reads:
    the header's name and text, and the policy's line separator, line length
    and transfer encoding. Only plain ``str`` values are cached; ``Header``
    objects are folded as usual.
    """

    def fold_binary(self, name: str, value: Any) -> bytes:
        if type(value) is str and self._fits_as_is(name, value):
            # What Header.encode gives such a value (the tests compare them);
            # each message's own Subject, To, Date and Message-ID are this.
            return f"{name}: {value}{self.linesep}".encode("ascii")
        if type(value) is str and (drawn := _DRAWN_BOUNDARY.fullmatch(value)):
            return self._fold_boundary(name, drawn[1], drawn[2])
        return self._fold_reused(name, value)

    def _fold_reused(self, name: str, value: Any) -> bytes:
        """``Compat32.fold_binary``, kept for a value folded before."""
        key = (name, value, self.linesep, self.max_line_length, self.cte_type)
        fold = functools.partial(Compat32.fold_binary, self, name, value)
        return bytes(_reused(_FOLDED, key, fold))

    def _fold_boundary(self, name: str, head: str, boundary: str) -> bytes:
        """A multipart ``Content-Type`` with the boundary the generator drew
        for this message (``===============<19 digits>==``): different in
        every message, too long for one line, so never reused as a whole.
        ``Header.encode`` splits an ASCII value only at white space and
        ``;,`` and never inside a word, so the boundary folds as any word of
        the same length without those characters: the value is folded once
        with a fixed stand-in, which is then swapped for the boundary."""
        folded = self._fold_reused(name, head + _STAND_IN)
        return folded.replace(_STAND_IN_BYTES, boundary.encode("ascii"), 1)

    def _fits_as_is(self, name: str, value: str) -> bool:
        """Printable ASCII words with single spaces, no encoded-word marker,
        on one line: nothing for ``compat32`` to fold or encode."""
        limit = self.max_line_length or 0
        return (
            (not limit or len(name) + 2 + len(value) <= limit)
            and _PLAIN_HEADER.fullmatch(value) is not None
            and "=?" not in value
        )


_FOLDED: dict[tuple[Any, ...], bytes] = {}
#: A value that ends with a boundary the generator drew, quoted, after
#: printable ASCII (``multipart/alternative; boundary="``) that does not hold
#: the stand-in (so the stand-in is found once, where the boundary goes).
_DRAWN_BOUNDARY = re.compile(
    r'((?:(?!={15}0{19}==)[ -~])*\bboundary=")(={15}[0-9]{19}==)"', re.ASCII
)
_STAND_IN = "=" * 15 + "0" * 19 + '=="'
_STAND_IN_BYTES = _STAND_IN[:-1].encode("ascii")
_PLAIN_HEADER = re.compile(r"[!-~]+(?: [!-~]+)*", re.ASCII)

#: ``email.policy.compat32`` that reuses folded headers.
COMPAT32 = ReusingCompat32()
