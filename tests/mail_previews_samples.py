"""Previews registered by the tests (a project would put these in an app's
``mail_previews.py``; the package's own, the password reset, is discovered)."""

from __future__ import annotations

from django.core.mail import EmailMessage

from hypermail_django import HypermailMessage
from hypermail_django.previews import preview

#: A 1x1 PNG.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8ff1f000301010018dd8db40000000049454e44ae426082"
)

#: Everything an attacker would try: a script that sets a global and calls
#: home, an auto-submitting form, a javascript: link, a remote image, a remote
#: stylesheet. ``{beacon}`` is a URL of a local server that counts requests.
EVIL_HTML = """<html><head><link rel="stylesheet" href="{beacon}/css"></head><body>
<h1 id="greeting">Hello</h1>
<script>window.top.pwned = 1; window.pwned = 1;
  fetch("{beacon}/fetch"); new Image().src = "{beacon}/script-image";</script>
<img id="remote" src="{beacon}/image" alt="remote">
<form id="f" action="{beacon}/form" method="get"><input name="q" value="1">
<button id="go">Go</button></form>
<script>document.getElementById("f").submit()</script>
<a id="js" href="javascript:window.top.pwned=2">click me</a>
</body></html>"""

BEACON = {"url": "http://127.0.0.1:9"}


@preview(description="An order confirmation with a logo and an invoice.")
def order_confirmation() -> EmailMessage:
    return HypermailMessage(
        "Your order #1042",
        "Thanks for your order.\n\nTotal: 42 EUR",
        "shop@example.com",
        ["customer@example.com"],
        html='<h1 style="color: #264b5d">Thanks for your order</h1>'
        '<img src="cid:logo" alt="logo"><p>Total: <b>42 EUR</b></p>',
        inline_images={"logo": (("logo.png", PIXEL, "image/png"))},
        attachments=[("invoice.txt", "Invoice 1042\n", "text/plain")],
    )


@preview(name="Hostile HTML")
def hostile(request: object) -> EmailMessage:
    """An HTML body that tries everything (the request is passed along)."""
    return HypermailMessage(
        "Hostile",
        "text",
        "shop@example.com",
        ["customer@example.com"],
        html=EVIL_HTML.replace("{beacon}", BEACON["url"]),
    )


@preview
def not_a_message() -> EmailMessage:
    return "oops"  # type: ignore[return-value]
