"""Templated email: subject, HTML and text from templates, in the recipient's language.

Run it from the repository root:

    .venv/bin/python examples/templated_email.py

It writes an email called ``welcome`` (``welcome/subject.txt`` and
``welcome/body.html``, extending the layout shipped in
``hypermail_django/email/base.html``) to a temporary template folder, then:

1. sends it with ``send_templated_mail()`` through FluxMailBackend to an SMTP
   test server, with the backend's ``css_inline`` option on and an inline logo,
   and prints what the server received;
2. renders it in German with ``TemplatedEmail(..., language="de")``;
3. sends it through the console backend, to show what a developer sees;
4. renders a one-off body with ``EmailTemplate``.
"""

from __future__ import annotations

import datetime
import sys
import tempfile
from pathlib import Path

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from html_email import show_tree, tiny_png

BACKEND = "hypermail_django.backends.FluxMailBackend"

TEMPLATES = {
    "welcome/subject.txt": "Welcome to {{ site }}, {{ name }}!\n",
    "welcome/body.html": """{% extends "hypermail_django/email/base.html" %}
{% block preheader %}Your account is almost ready{% endblock %}
{% block header %}<img src="cid:logo" alt="{{ site }}" width="32">{% endblock %}
{% block content %}
<h1>Hello {{ name }}</h1>
<p>{{ joined|date:"l, j F Y" }}</p>
<p><a class="button" href="{{ activate_url }}">Activate your account</a></p>
{% endblock %}
{% block footer %}<p>{{ site }}, 1 Example Street</p>{% endblock %}
""",
}


def configure(server: SMTPTestServer, folder: Path) -> None:
    # css_inline is a backend option: every HTML message it sends is inlined.
    options = {"host": server.host, "port": server.port, "css_inline": True}
    if django.VERSION >= (6, 1):
        mail = {"MAILERS": {"default": {"BACKEND": BACKEND, "OPTIONS": options}}}
    else:
        mail = {
            "EMAIL_BACKEND": BACKEND,
            "EMAIL_HOST": server.host,
            "EMAIL_PORT": server.port,
            "EMAIL_FLUXMAIL_CSS_INLINE": True,
        }
    settings.configure(
        DEFAULT_FROM_EMAIL="Acme <hello@example.com>",
        INSTALLED_APPS=["hypermail_django"],  # for its templates/ folder
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [folder],
                "APP_DIRS": True,
            }
        ],
        USE_I18N=True,
        **mail,
    )
    django.setup()


def main() -> None:
    with SMTPTestServer() as server, tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for path, source in TEMPLATES.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(source, encoding="utf-8")
        configure(server, folder)

        from hypermail_django.backends import ConsoleBackend
        from hypermail_django.compose.email_template import EmailTemplate
        from hypermail_django.compose.templated import (
            TemplatedEmail,
            send_templated_mail,
        )

        context = {
            "site": "Acme",
            "name": "Alice & Bob",
            "joined": datetime.date(2025, 3, 14),
            "activate_url": "https://acme.example/activate/42",
        }
        print("1. send_templated_mail() through FluxMailBackend (css_inline on)")
        send_templated_mail(
            "welcome",
            context,
            to=["alice@example.com"],
            inline_images={"logo": ("logo.png", tiny_png(), "image/png")},
            unsubscribe_url="https://acme.example/unsubscribe/42",
        )
        (received,) = server.messages
        parsed = received.message()
        print(f"   Subject: {parsed['Subject']}")
        show_tree(parsed)
        html = parsed.get_body(("html",)).get_content()
        start = html.index('<a class="button"')
        print(f"   inlined: {html[start : html.index('>', start) + 1]}")
        print("   text part (generated from the HTML):")
        for line in parsed.get_body(("plain",)).get_content().strip().splitlines():
            print(f"   | {line}".rstrip())

        print("2. The same email rendered in German (dates, translations)")
        german = TemplatedEmail("welcome", context, language="de").render()
        print(f"   {german.text.splitlines()[4]}")

        print("3. Through the console backend")
        ConsoleBackend().send_messages(
            [TemplatedEmail("welcome", context).message(["carol@example.com"])]
        )

        print("4. EmailTemplate for a one-off body")
        note = EmailTemplate("<p>Hi {{ name }}</p>", autoescape=True)
        print(f"   {note.render(name='<Dan>')}")


if __name__ == "__main__":
    main()
