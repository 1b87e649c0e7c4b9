"""CSS inlining: the engines, no network access, and inlining once per message."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from django.core.mail import EmailMessage, EmailMultiAlternatives

from hypermail_django.compose.css import (
    INLINED_MARK,
    get_inliner,
    inline_css,
    inline_message,
    premailer_engine,
)
from hypermail_django.exceptions import ConfigurationError, CSSInlineError

HTML = """<html><head><style>
p { color: #1a2b3c; }
.lead { font-weight: bold; }
@media only screen and (max-width: 600px) { p { font-size: 18px; } }
</style></head>
<body><p class="lead" style="margin: 0">Hello</p><p>World</p></body></html>"""


class _Elements(HTMLParser):
    """(tag, attributes) of every start tag, and the text of <style> blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def declarations(style: str) -> dict[str, str]:
    """``"color: red; margin:0"`` -> ``{"color": "red", "margin": "0"}``."""
    pairs = (item.split(":", 1) for item in style.split(";") if ":" in item)
    return {name.strip().lower(): value.strip().lower() for name, value in pairs}


def paragraph_styles(html: str) -> list[dict[str, str]]:
    return [
        declarations(a.get("style", "")) for t, a in parse(html).elements if t == "p"
    ]


@pytest.mark.parametrize("engine", ["css_inline", "premailer"])
def test_rules_move_into_style_attributes(engine):
    first, second = paragraph_styles(inline_css(HTML, engine))
    assert first["color"] == "#1a2b3c"
    assert first["font-weight"] == "bold"
    assert first["margin"] == "0"  # the element's own style is kept
    assert second["color"] == "#1a2b3c"
    assert "font-weight" not in second


@pytest.mark.parametrize("engine", ["css_inline", "premailer"])
def test_media_queries_are_kept_in_a_style_block(engine):
    styles = " ".join(parse(inline_css(HTML, engine)).styles)
    assert "@media" in styles
    assert "max-width: 600px" in styles
    assert "#1a2b3c" not in styles  # the plain rules were inlined, not kept


@pytest.fixture
def stylesheet_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on loopback that records every request it gets."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = b"p { color: #00ff00; }"
            self.send_response(200)
            self.send_header("Content-Type", "text/css")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/mail.css", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("engine", ["css_inline", "premailer"])
def test_remote_stylesheets_are_never_fetched(engine, stylesheet_server):
    url, requests = stylesheet_server
    html = f'<html><head><link rel="stylesheet" href="{url}"></head><p>x</p></html>'
    result = inline_css(html, engine)
    assert requests == []
    assert "#00ff00" not in result


def test_local_files_are_not_read_either(tmp_path):
    (tmp_path / "secret.css").write_text("p { color: #123456; }")
    html = f'<link rel="stylesheet" href="{tmp_path / "secret.css"}"><p>x</p>'
    assert "#123456" not in inline_css(html)


def upper_inliner(html: str) -> str:
    """A custom engine, importable by dotted path."""
    return html.upper()


def test_engines_by_name_dotted_path_or_callable():
    assert get_inliner(None) is get_inliner("css_inline")
    assert get_inliner("premailer") is premailer_engine
    assert inline_css("<p>x</p>", "tests.compose.test_css.upper_inliner") == "<P>X</P>"
    assert inline_css("<p>x</p>", str.upper) == "<P>X</P>"


@pytest.mark.parametrize(
    ("engine", "says"),
    [
        ("premailr", "Unknown CSS inliner 'premailr'"),
        ("tests.compose.test_css.missing", "cannot be imported"),
        ("tests.compose.test_css.HTML", "is not callable"),
        (42, "must be 'css_inline', 'premailer'"),
    ],
)
def test_unusable_engines_are_configuration_errors(engine, says):
    with pytest.raises(ConfigurationError, match=says) as caught:
        get_inliner(engine)
    assert caught.value.code == "invalid_config"


def test_an_engine_returning_something_else_is_an_error():
    with pytest.raises(CSSInlineError) as caught:
        inline_css("<p>x</p>", lambda html: None)
    assert caught.value.code == "css_inline_failed"


def _counting():
    calls: list[str] = []

    def engine(html: str) -> str:
        calls.append(html)
        return html.replace("<p>", '<p style="color: red">')

    return engine, calls


def test_inline_message_changes_every_html_part_once():
    engine, calls = _counting()
    message = EmailMultiAlternatives("S", "text", to=["a@example.com"])
    message.attach_alternative("<p>one</p>", "text/html")
    message.attach_alternative("<p>{}</p>", "application/json")
    assert inline_message(message, engine) is True
    assert message.alternatives[0].content == '<p style="color: red">one</p>'
    assert message.alternatives[1].content == "<p>{}</p>"  # not HTML: untouched
    assert getattr(message, INLINED_MARK) is True
    assert inline_message(message, engine) is False  # marked: never twice
    assert calls == ["<p>one</p>"]


def test_inline_message_handles_an_html_body():
    engine, _calls = _counting()
    message = EmailMessage("S", "<p>body</p>", to=["a@example.com"])
    message.content_subtype = "html"
    inline_message(message, engine)
    assert message.body == '<p style="color: red">body</p>'


def test_a_message_without_html_is_left_unmarked():
    message = EmailMessage("S", "plain", to=["a@example.com"])
    assert inline_message(message) is False
    assert not hasattr(message, INLINED_MARK)
