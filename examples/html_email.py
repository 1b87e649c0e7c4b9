"""HTML email: CSS inlined, an inline logo, an attachment and one-click unsubscribe.

Run it from the repository root:

    .venv/bin/python examples/html_email.py

It starts an SMTP test server on 127.0.0.1 (``hypermail_django.testing``, from
the ``testing`` extra), makes FluxMailBackend Django's mailer, sends one
``HypermailMessage`` and prints what the server received: the MIME tree, the
headers the options added, the style attribute the inliner wrote, and the
text part generated from the HTML.
"""

from __future__ import annotations

import struct
import tempfile
import zlib
from pathlib import Path

import django
from django.conf import settings

from hypermail_django.testing import SMTPTestServer

BACKEND = "hypermail_django.backends.FluxMailBackend"

HTML = """<html><head><style>
  body { font-family: Helvetica, Arial, sans-serif; }
  h1 { color: #1f2933; font-size: 24px; }
  .button { background-color: #2563eb; color: #ffffff; padding: 12px 24px; }
  @media only screen and (max-width: 600px) { h1 { font-size: 20px; } }
</style></head>
<body>
  <p><img src="cid:logo" alt="Acme" width="32" height="32"></p>
  <h1>Your order has shipped</h1>
  <p>Order <b>#1042</b> is on its way.
     <a class="button" href="https://shop.example/orders/1042">Track it</a></p>
</body></html>"""


def tiny_png(size: int = 32, rgb: tuple[int, int, int] = (37, 99, 235)) -> bytes:
    """A square PNG of one colour, made with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


def configure(server: SMTPTestServer) -> None:
    options = {"host": server.host, "port": server.port}
    if django.VERSION >= (6, 1):
        mail = {"MAILERS": {"default": {"BACKEND": BACKEND, "OPTIONS": options}}}
    else:
        mail = {"EMAIL_BACKEND": BACKEND, "EMAIL_HOST": server.host}
        mail["EMAIL_PORT"] = server.port
    settings.configure(DEFAULT_FROM_EMAIL="Acme <shop@example.com>", **mail)
    django.setup()


def show_tree(part, depth: int = 0) -> None:
    extra = []
    if part["Content-ID"]:
        extra.append(f"Content-ID {part['Content-ID']}")
    if part.get_content_disposition():
        extra.append(part.get_content_disposition())
    print(f"   {'  ' * depth}{part.get_content_type()}  {' '.join(extra)}".rstrip())
    if part.is_multipart():
        for child in part.iter_parts():
            show_tree(child, depth + 1)


def main() -> None:
    with SMTPTestServer() as server, tempfile.TemporaryDirectory() as folder:
        configure(server)
        from hypermail_django.compose.message import HypermailMessage

        logo = Path(folder) / "logo.png"
        logo.write_bytes(tiny_png())
        invoice = Path(folder) / "invoice.csv"
        invoice.write_text("item,price\nmug,19.95\n")

        message = HypermailMessage(
            "Your order has shipped",
            to=["Alice <alice@example.com>"],
            html=HTML,
            css_inline=True,  # inline now, with css-inline (the default engine)
            inline_images={"logo": logo},
            attachments=[invoice],  # file paths work next to Django's triples
            reply_to="help@example.com",
            priority="high",
            unsubscribe_url="https://shop.example/unsubscribe/alice",
        )
        message.send()

        (received,) = server.messages
        parsed = received.message()
        print("1. The MIME tree the server received")
        show_tree(parsed)

        print("2. Headers added by the options")
        for name in ("Reply-To", "X-Priority", "Importance", "List-Unsubscribe"):
            print(f"   {name}: {str(parsed[name]).strip()}")
        print(f"   List-Unsubscribe-Post: {parsed['List-Unsubscribe-Post']}")

        print("3. The HTML after CSS inlining (the <h1> and the button)")
        html = parsed.get_body(("html",)).get_content()
        for tag in ("<h1", '<a class="button"'):
            start = html.index(tag)
            print(f"   {html[start : html.index('>', start) + 1]}")
        print(f"   @media rule kept: {'@media only screen' in html}")

        print("4. The text part, generated from the HTML")
        text = parsed.get_body(("plain",)).get_content()
        for line in text.strip().splitlines():
            print(f"   | {line}".rstrip())


if __name__ == "__main__":
    main()
