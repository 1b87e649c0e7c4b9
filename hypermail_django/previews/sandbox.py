"""Serve an email's HTML where it can do nothing: no scripts, no requests.

Email HTML comes from templates, users and attackers alike. The delivery log
and the previews show it in an ``<iframe sandbox="">`` (no scripts, no forms,
no top navigation, an opaque origin), and the frame's own response carries a
Content-Security-Policy that forbids scripts, forms, frames and every fetch --
images included, until the viewer asks for remote images -- and sandboxes the
document again should it be opened outside the frame.
"""

from __future__ import annotations

from django.http import HttpResponse

#: Inline styles are how email is styled; everything else is refused.
_BASE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; font-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox"
)


def content_security_policy(*, remote_images: bool) -> str:
    """The frame's policy: ``data:`` images (inline ``cid:`` ones) always; remote
    ``http(s)`` images only when asked for."""
    images = "img-src data: https: http:" if remote_images else "img-src data:"
    return f"{_BASE_POLICY}; {images}"


def sandboxed_html(html: str, *, remote_images: bool = False) -> HttpResponse:
    """A response for the frame's ``src``: the HTML under the strict policy."""
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = content_security_policy(
        remote_images=remote_images
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    response["X-Frame-Options"] = "SAMEORIGIN"
    response["Cache-Control"] = "no-store, private"
    return response


def download(data: bytes, filename: str, content_type: str) -> HttpResponse:
    """Bytes as a download, never rendered by the browser."""
    response = HttpResponse(data, content_type=content_type)
    safe = "".join(c for c in filename if c.isalnum() or c in "._-") or "download"
    response["Content-Disposition"] = f'attachment; filename="{safe}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
