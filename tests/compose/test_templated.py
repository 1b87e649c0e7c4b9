"""Templated email with the Django template language and Jinja2; EmailTemplate."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.test import override_settings
from django.utils import translation

import hypermail_django
from hypermail_django.backends import MemoryBackend
from hypermail_django.compat import MAILERS_SUPPORTED
from hypermail_django.compose.email_template import EmailTemplate
from hypermail_django.compose.templated import TemplatedEmail, send_templated_mail
from hypermail_django.exceptions import ConfigurationError, TemplateNotFound
from hypermail_django.testing.outbox import clear_outbox, get_outbox

from ..conftest import legacy_settings, requires_mailers
from ..paths import TESTS

PACKAGE_TEMPLATES = Path(hypermail_django.__file__).resolve().parent / "templates"
DTL = {
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [TESTS / "templates"],
    "APP_DIRS": True,
}


def jinja2(**options: Any) -> dict[str, Any]:
    return {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "jinja2",
        "DIRS": [TESTS / "templates" / "jinja2", PACKAGE_TEMPLATES],
        "OPTIONS": options,
    }


CONTEXT = {
    "site": "Acme",
    "name": "Tom & <Jerry>",
    "url": "https://acme.example/activate?a=1&b=2",
}


@pytest.fixture(autouse=True)
def templates() -> Iterator[None]:
    with override_settings(TEMPLATES=[DTL]):
        yield


@pytest.fixture
def outbox() -> Iterator[list[Any]]:
    clear_outbox()
    yield get_outbox
    clear_outbox()


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)


def elements(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def test_subject_text_and_html_rendered_by_name():
    rendered = TemplatedEmail("emails/welcome", CONTEXT).render()
    assert rendered.subject == "Welcome to Acme, Tom & <Jerry>!"  # one line, raw
    assert rendered.text == (
        "Hello Tom & <Jerry>,\n\n"
        "activate your account: https://acme.example/activate?a=1&b=2"
    )
    assert rendered.html is not None
    parsed = elements(rendered.html)
    assert "Hello Tom & <Jerry>" in "".join(parsed.text)  # decoded back
    assert "<Jerry>" not in rendered.html  # ...because it was escaped
    assert "Tom &amp; &lt;Jerry&gt;" in rendered.html
    (link,) = [a for tag, a in parsed.elements if tag == "a"]
    assert link["href"] == CONTEXT["url"]
    # The layout's <title> is the subject.
    assert "<title>Welcome to Acme, Tom &amp; &lt;Jerry&gt;!</title>" in rendered.html


def test_html_only_gets_a_generated_text_part():
    rendered = TemplatedEmail("emails/html_only", {"number": 7, "name": "Ann"}).render()
    assert rendered.subject == "Receipt 7"
    assert rendered.text == (
        "Receipt 7\n\nThanks, Ann. See your order (https://shop.example/orders/7)."
    )


def test_text_only_email_has_no_html():
    email = TemplatedEmail("emails/text_only", {"name": "Ann"})
    rendered = email.render()
    assert (rendered.text, rendered.html) == ("Just text for Ann.", None)
    message = email.message(["ann@example.com"])
    assert message.alternatives == []
    assert message.message().get_content_type() == "text/plain"


def test_missing_body_templates():
    with pytest.raises(TemplateNotFound) as caught:
        TemplatedEmail("emails/no_body").render()
    error = caught.value
    assert error.code == "template_not_found"
    assert "emails/no_body/body.txt" in str(error)
    assert "emails/no_body/body.html" in str(error)
    assert isinstance(error, TemplateDoesNotExist)
    assert len(error.chain) == 2


def test_missing_subject_template():
    with pytest.raises(TemplateNotFound, match="no subject") as caught:
        TemplatedEmail("emails/nothing_here").render()
    assert caught.value.tried  # Django's debug page lists where it looked


def test_rendered_in_the_recipients_language():
    context = {"confirmed": True, "when": datetime.date(2025, 1, 15)}
    with translation.override("en"):
        german = TemplatedEmail("emails/translated", context, language="de").render()
        english = TemplatedEmail("emails/translated", context).render()
        assert translation.get_language() == "en"  # restored
    assert german.subject == "[de] Ja"
    assert german.text == "Ja Januar"
    assert english.subject == "[en] yes"
    assert english.text == "yes January"


def test_send_templated_mail_through_a_connection(outbox):
    count = send_templated_mail(
        "emails/welcome",
        CONTEXT,
        to=["tom@example.com"],
        from_email="hello@acme.example",
        connection=MemoryBackend(),
        css_inline=True,
        unsubscribe_url="https://acme.example/unsub/1",
    )
    assert count == 1
    (entry,) = outbox()
    assert entry.subject == "Welcome to Acme, Tom & <Jerry>!"
    assert entry.to == ["tom@example.com"]
    assert entry.headers["List-Unsubscribe"] == "<https://acme.example/unsub/1>"
    html = entry.html_body
    assert html is not None
    # The layout's CSS is inlined, its @media rules kept.
    styles = {
        attrs.get("class"): attrs.get("style", "")
        for tag, attrs in elements(html).elements
        if tag == "td"
    }
    assert "font-family: Helvetica" in styles["content"]
    assert "@media only screen and (max-width: 620px)" in html
    # The List-Unsubscribe URL is also the link the layouts show.
    assert entry.body.endswith("Unsubscribe: https://acme.example/unsub/1")
    assert 'href="https://acme.example/unsub/1"' in html


def test_unsubscribe_link_from_the_context_in_both_layouts(outbox):
    context = {**CONTEXT, "unsubscribe_url": "https://acme.example/unsub/1"}
    rendered = TemplatedEmail("emails/welcome", context).render()
    assert rendered.text.endswith("Unsubscribe: https://acme.example/unsub/1")
    assert '<a href="https://acme.example/unsub/1">Unsubscribe</a>' in (
        rendered.html or ""
    )


def test_send_templated_mail_through_the_default_mailer(outbox):
    memory = "hypermail_django.backends.MemoryBackend"
    if MAILERS_SUPPORTED:
        settings = override_settings(MAILERS={"default": {"BACKEND": memory}})
    else:
        settings = legacy_settings(EMAIL_BACKEND=memory)
    with settings:
        assert send_templated_mail("emails/text_only", {"name": "Ann"}, to=["a@x.org"])
    (entry,) = outbox()
    assert (entry.subject, entry.body) == ("Plain Ann", "Just text for Ann.")


@requires_mailers
def test_using_names_a_mailer(outbox):
    mailers = {
        "default": {"BACKEND": "django.core.mail.backends.dummy.EmailBackend"},
        "memory": {"BACKEND": "hypermail_django.backends.MemoryBackend"},
    }
    with override_settings(MAILERS=mailers):
        send_templated_mail(
            "emails/text_only", {"name": "Ann"}, to=["a@x.org"], using="memory"
        )
    assert [e.alias for e in outbox()] == ["memory"]


@pytest.mark.skipif(MAILERS_SUPPORTED, reason="using= works on Django 6.1")
def test_using_before_django_6_1_says_what_to_do():
    with pytest.raises(ConfigurationError, match="connection="):
        send_templated_mail("emails/text_only", {}, to=["a@x.org"], using="memory")


def test_using_and_connection_together_is_an_error():
    with pytest.raises(ConfigurationError):
        send_templated_mail(
            "emails/text_only",
            {},
            to=["a@x.org"],
            using="x",
            connection=MemoryBackend(),
        )


def test_message_options_pass_through():
    message = TemplatedEmail("emails/welcome", CONTEXT).message(
        ["tom@example.com"],
        cc=["boss@example.com"],
        reply_to="help@acme.example",
        priority="high",
        inline_images={"logo": ("logo.png", b"\x89PNG", "image/png")},
    )
    assert message.cc == ["boss@example.com"]
    assert message.extra_headers["X-Priority"] == "1 (Highest)"
    assert "logo" in message.inline_images


def test_naming_convention_can_change():
    class Flat(TemplatedEmail):
        subject_template = "emails/{name}/subject.txt"
        text_template = "emails/{name}/body.txt"
        html_template = "emails/{name}/missing.html"

    assert Flat("text_only", {"name": "B"}).render().subject == "Plain B"


# -- Jinja2 ----------------------------------------------------------------------


def test_jinja2_templates_and_the_shipped_layout():
    # Django's Jinja2 backend autoescapes everything by default.
    with override_settings(TEMPLATES=[jinja2()]):
        rendered = TemplatedEmail("emails/welcome", CONTEXT).render()
    assert rendered.subject == "Welcome to Acme, Tom & <Jerry>!"
    assert (
        rendered.text == "Hello Tom & <Jerry> (https://acme.example/activate?a=1&b=2)"
    )
    assert rendered.html is not None
    assert "<h1>Hello Tom &amp; &lt;Jerry&gt;</h1>" in rendered.html
    assert "<title>Welcome to Acme, Tom &amp; &lt;Jerry&gt;!</title>" in rendered.html
    assert "@media only screen" in rendered.html


def test_jinja2_html_is_escaped_even_when_the_engine_is_not():
    with override_settings(TEMPLATES=[jinja2(autoescape=False)]):
        rendered = TemplatedEmail("emails/welcome", CONTEXT).render()
    assert "&lt;Jerry&gt;" in (rendered.html or "")
    assert rendered.subject == "Welcome to Acme, Tom & <Jerry>!"


def test_template_engine_chooses_among_engines():
    with override_settings(TEMPLATES=[DTL, jinja2()]):
        dtl = TemplatedEmail("emails/welcome", CONTEXT).render()
        jinja = TemplatedEmail(
            "emails/welcome", CONTEXT, template_engine="jinja2"
        ).render()
    assert dtl.text.startswith("Hello Tom & <Jerry>,\n")
    assert jinja.text.startswith("Hello Tom & <Jerry> (")


# -- EmailTemplate -------------------------------------------------------------------


def test_email_template_renders_variables():
    template = EmailTemplate("Hi {{ first_name }} from {{ company }}")
    assert template.render(first_name="Alice", company="A & B") == "Hi Alice from A & B"
    assert template.render({"first_name": "Bo", "company": "C"}, company="D") == (
        "Hi Bo from D"
    )


def test_email_template_escapes_for_html():
    template = EmailTemplate("<p>{{ name }}</p>", autoescape=True)
    assert template.render(name="<b>Tom & Jerry</b>") == (
        "<p>&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>"
    )


def test_email_template_from_file_guesses_escaping(tmp_path):
    (tmp_path / "welcome.html").write_text("<p>{{ name }}</p>", encoding="utf-8")
    (tmp_path / "welcome.txt").write_text("{{ name }}", encoding="utf-8")
    assert EmailTemplate.from_file(tmp_path / "welcome.html").render(name="<x>") == (
        "<p>&lt;x&gt;</p>"
    )
    assert EmailTemplate.from_file(tmp_path / "welcome.txt").render(name="<x>") == "<x>"
    with pytest.raises(TemplateNotFound) as caught:
        EmailTemplate.from_file(tmp_path / "nope.html")
    assert caught.value.code == "template_not_found"


def test_email_template_with_jinja2():
    with override_settings(TEMPLATES=[DTL, jinja2()]):
        text = EmailTemplate("{{ name | upper }} {{ 1 + 1 }}", using="jinja2")
        html = EmailTemplate("<p>{{ name }}</p>", autoescape=True, using="jinja2")
        assert text.render(name="a&b") == "A&B 2"
        assert html.render(name="a&b") == "<p>a&amp;b</p>"


def test_email_template_without_any_configured_engine():
    with override_settings(TEMPLATES=[]):
        assert EmailTemplate("{{ n|add:1 }}").render(n=1) == "2"


def test_email_template_syntax_errors_surface_at_creation():
    with pytest.raises(TemplateSyntaxError):
        EmailTemplate("{% if %}")
