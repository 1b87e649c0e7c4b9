"""Plain text generated from HTML: readable, links kept, nothing of the markup left."""

from __future__ import annotations

import pytest

from hypermail_django.compose.text import html_to_text


def test_links_are_kept_as_text_and_url():
    html = '<p>Open <a href="https://example.com/d">your dashboard</a> now.</p>'
    assert html_to_text(html) == "Open your dashboard (https://example.com/d) now."


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (
            '<a href="https://example.com">https://example.com</a>',
            "https://example.com",
        ),
        ('<a href="https://example.com/">example.com</a>', "example.com"),
        ('<a href="https://example.com/x"></a>', "https://example.com/x"),
        (
            '<a href="mailto:help@example.com?subject=Hi">help@example.com</a>',
            "help@example.com",
        ),
        (
            '<a href="mailto:help@example.com">Write to us</a>',
            "Write to us (help@example.com)",
        ),
        ('<a href="#top">Back to top</a>', "Back to top"),
        ('<a href="javascript:void(0)">Click</a>', "Click"),
        (
            '<a href="https://x.example/buy"><img src="cid:b" alt="Buy now"></a>',
            "Buy now (https://x.example/buy)",
        ),
    ],
)
def test_link_forms(html, expected):
    assert html_to_text(html) == expected


def test_paragraphs_headings_and_line_breaks():
    html = "<h1>Welcome</h1><p>First line<br>second line</p><p>Next paragraph</p>"
    assert html_to_text(html) == (
        "Welcome\n\nFirst line\nsecond line\n\nNext paragraph"
    )


def test_lists_nested_and_numbered():
    html = (
        "<p>Steps:</p><ol><li>Sign up</li><li>Confirm<ul><li>check spam</li></ul>"
        '</li></ol><ul><li>one</li><li>two</li></ul><ol start="7"><li>seven</li></ol>'
    )
    assert html_to_text(html) == (
        "Steps:\n\n1. Sign up\n2. Confirm\n  - check spam\n\n- one\n- two\n\n7. seven"
    )


def test_no_tags_css_scripts_or_hidden_text():
    html = """<!DOCTYPE html><html><head><title>Ignored title</title>
    <style>p { color: red; } @media (max-width: 600px) { p { color: blue } }</style>
    <script>alert("x")</script></head>
    <body><div style="display:none;max-height:0">Preheader only for the inbox</div>
    <span hidden>also hidden</span><!-- a comment -->
    <p style="color: red">Visible</p></body></html>"""
    assert html_to_text(html) == "Visible"


def test_entities_are_decoded_and_whitespace_collapsed():
    html = "<p>Tom&nbsp;&amp;&nbsp;Jerry   &lt;3\n\n  &eacute;t&eacute;&zwnj;</p>"
    assert html_to_text(html) == "Tom & Jerry <3 été"


def test_tables_put_each_row_on_its_own_line():
    html = (
        "<table><tr><th>Item</th><th>Price</th></tr>"
        "<tr><td>Mug</td><td>19.95</td></tr></table><p>Thanks</p>"
    )
    assert html_to_text(html) == "Item Price\nMug 19.95\n\nThanks"


def test_quotes_pre_and_rules():
    html = (
        "<blockquote><p>quoted</p><p>twice</p></blockquote>"
        "<pre>  indented\n    code</pre><hr><p>after</p>"
    )
    assert html_to_text(html) == (
        "> quoted\n>\n> twice\n\n  indented\n    code\n\n---\n\nafter"
    )


def test_image_alt_text_is_kept_and_empty_alt_dropped():
    html = '<p><img src="cid:logo" alt="Acme"> <img src="pixel.gif" alt=""> News</p>'
    assert html_to_text(html) == "Acme News"


def test_sloppy_html_does_not_lose_text():
    html = "<p>one<p>two<li>three<div>four</span></b>"
    text = html_to_text(html)
    for word in ("one", "two", "three", "four"):
        assert word in text
    assert "<" not in text


def test_empty_input():
    assert html_to_text("") == ""
    assert html_to_text("<p> </p>") == ""
