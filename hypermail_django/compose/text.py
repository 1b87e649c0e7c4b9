"""Plain text from an HTML email body, for the ``text/plain`` alternative.

Spam filters score HTML-only mail, and some readers show only the text part, so
every HTML message should carry a readable text twin. This one keeps what a
reader needs and drops the rest:

- links as ``text (url)`` (just the URL when the text is the URL);
- paragraphs and headings separated by blank lines, ``<br>`` as a line break;
- list items as ``- item`` or ``1. item``, nested lists indented;
- block quotes prefixed with ``> ``; ``<pre>`` kept as written;
- image ``alt`` text; table cells on one line, rows on their own lines;
- no tags, no CSS, no scripts, nothing hidden (``display:none``, ``hidden``,
  such as a preheader), entities decoded.

Built on the standard library's ``html.parser``: no dependency, and it accepts
the sloppy HTML email templates are made of.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

#: Elements whose content is never text.
_SKIP = {"script", "style", "head", "title", "template", "svg", "object", "iframe"}
#: Elements without an end tag.
_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
#: Blocks separated from their neighbours by a blank line.
_PARAGRAPHS = {
    "p",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "blockquote",
    "pre",
    "address",
    "dl",
    "figure",
    "form",
    "fieldset",
}
#: Blocks that start on a new line.
_LINES = {
    "div",
    "tr",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "nav",
    "aside",
    "center",
    "dt",
    "dd",
    "caption",
    "figcaption",
    "tbody",
    "thead",
    "tfoot",
}
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|mso-hide\s*:\s*all", re.IGNORECASE)


def html_to_text(html: str) -> str:
    """Return a readable plain-text version of ``html`` (see the module docs)."""
    builder = _TextBuilder()
    builder.feed(html)
    builder.close()
    return builder.text()


class _List:
    def __init__(self, ordered: bool, start: int) -> None:
        self.ordered = ordered
        self.next = start


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.breaks = 0  # newlines owed before the next text (at most 2)
        self.space = False  # a collapsed space owed before the next text
        self.line_start = True
        self.marker: str | None = None  # a list marker owed at the next text
        self.skip_tag: str | None = None
        self.skip_depth = 0
        self.lists: list[_List] = []
        self.items = 0  # open <li> elements
        self.quotes = 0
        self.emitted_quotes = 0  # quote depth of the last line written
        self.pre = 0
        self.links: list[tuple[str, list[str]]] = []  # (href, words so far)

    # -- output ---------------------------------------------------------------

    def text(self) -> str:
        lines = [line.rstrip() for line in "".join(self.parts).split("\n")]
        text = "\n".join(lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n")

    def _prefix(self) -> str:
        indent = "  " * max(len(self.lists) - 1, 0)
        if self.items and self.marker is None:
            indent += "  "  # continuation lines of a list item
        return "> " * self.quotes + indent

    def _break(self, count: int) -> None:
        if self.marker is None:  # a block right inside <li> stays on its line
            self.breaks = max(self.breaks, count)

    def _emit(self, text: str) -> None:
        if self.breaks and self.parts:
            # A blank line inside a block quote keeps its ">".
            blank = ("> " * min(self.quotes, self.emitted_quotes)).rstrip() + "\n"
            self.parts.append("\n" + blank * (self.breaks - 1))
            self.line_start = True
        self.breaks = 0
        if self.line_start:
            prefix = self._prefix()
            if self.marker is not None:
                prefix += self.marker
                self.marker = None
            self.parts.append(prefix)
            self.line_start = False
        elif self.space:
            self.parts.append(" ")
        self.space = False
        self.parts.append(text)
        self.emitted_quotes = self.quotes
        for _href, words in self.links:
            words.append(text)

    # -- parser callbacks ---------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth += 1
            return
        attributes = {name: value or "" for name, value in attrs}
        if tag in _SKIP or _hidden(attributes):
            if tag not in _VOID:
                self.skip_tag, self.skip_depth = tag, 1
            return
        if tag in _PARAGRAPHS:
            self._break(2)
        elif tag in _LINES:
            self._break(1)
        if tag == "br":
            self.breaks = min(self.breaks + 1, 2)
            self.space = False
        elif tag == "hr":
            self._break(2)
            self._emit("---")
            self._break(2)
        elif tag == "pre":
            self.pre += 1
        elif tag == "blockquote":
            self.quotes += 1
        elif tag in ("ul", "ol"):
            self._break(1 if self.lists else 2)
            start = attributes.get("start", "1")
            self.lists.append(_List(tag == "ol", int(start) if start.isdigit() else 1))
        elif tag == "li":
            self.breaks = max(self.breaks, 1)
            current = self.lists[-1] if self.lists else _List(False, 1)
            if current.ordered:
                self.marker = f"{current.next}. "
                current.next += 1
            else:
                self.marker = "- "
            self.items += 1
        elif tag in ("td", "th"):
            self.space = True
        elif tag == "img":
            alt = " ".join(attributes.get("alt", "").translate(_INVISIBLE).split())
            if alt:
                self._emit(alt)
        elif tag == "a":
            self.links.append((attributes.get("href", "").strip(), []))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        if tag == "a" and self.links:
            href, words = self.links.pop()
            self._end_link(href, " ".join(" ".join(words).split()))
        elif tag == "pre" and self.pre:
            self.pre -= 1
        elif tag == "blockquote" and self.quotes:
            self.quotes -= 1
            self._break(2)
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self._break(1 if self.lists else 2)
        elif tag == "li" and self.items:
            self.items -= 1
            self.marker = None
            self._break(1)
        if tag in _PARAGRAPHS:
            self._break(2)
        elif tag in _LINES:
            self._break(1)
        elif tag in ("td", "th"):
            self.space = True

    def handle_data(self, data: str) -> None:
        if self.skip_tag is not None:
            return
        data = data.translate(_INVISIBLE)
        if self.pre:
            self._emit_pre(data)
            return
        if not data:
            return
        words = data.split()
        if not words:
            self.space = True
            return
        if data[0].isspace():
            self.space = True
        self._emit(" ".join(words))
        if data[-1].isspace():
            self.space = True

    def _emit_pre(self, data: str) -> None:
        for index, line in enumerate(data.split("\n")):
            if index:
                self.parts.append("\n")
                self.line_start = True
            if line:
                self._emit(line)

    def _end_link(self, href: str, text: str) -> None:
        target = _link_target(href)
        if target is None:
            return
        bare = re.sub(r"^https?://", "", target, flags=re.IGNORECASE)
        shown = {target, target.rstrip("/"), bare, bare.rstrip("/")}
        if not text:
            self._emit(target)
        elif text not in shown and text.rstrip("/") not in shown:
            self.parts.append(f" ({target})")


def _link_target(href: str) -> str | None:
    """What to show for a link: the URL, a mailto's address, or None."""
    if not href or href.startswith("#"):
        return None
    scheme = href.split(":", 1)[0].lower() if ":" in href else ""
    if scheme in ("javascript", "cid", "data"):
        return None
    if scheme == "mailto":
        return href[len("mailto:") :].split("?", 1)[0]
    return href


def _hidden(attributes: dict[str, str]) -> bool:
    return "hidden" in attributes or bool(
        _HIDDEN_STYLE.search(attributes.get("style", ""))
    )
