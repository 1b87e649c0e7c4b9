"""The preview pages: every declared preview and the memory outbox.

Served only with ``DEBUG`` or to active staff users; anyone else gets a 404,
so the pages do not even reveal that they exist. The message shown is the one
the configured mailer would send: our backends prepare it (CSS inlined,
headers added) exactly as they do before sending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ..backends.base import PreparingBackendMixin
from ..conf.mailers import get_mailer
from ..serialization.envelope_builder import build_envelope
from ..testing.outbox import get_outbox
from .mailview import MailView, view_of
from .registry import get_preview, get_previews
from .sandbox import download, sandboxed_html

#: The widths each HTML part is shown at.
WIDTHS = [("Desktop", "800px"), ("Mobile", "375px")]


def allowed(request: HttpRequest) -> bool:
    """Previews show sample data and real templates: developers (``DEBUG``)
    and staff only."""
    if settings.DEBUG:
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff)


def _guard(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not allowed(request):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    guarded.__name__ = view.__name__
    guarded.__doc__ = view.__doc__
    return guarded


@dataclass
class Shown:
    """A message to show: its title, bytes, and how to rebuild it to send."""

    title: str
    description: str
    raw: bytes
    base_url: str
    rebuild: Callable[[], EmailMessage] | None = None


def serialized(message: EmailMessage) -> bytes:
    """The bytes the configured mailer would send for ``message``."""
    try:
        mailer: Any = get_mailer(None)
    except Exception:
        mailer = None
    if isinstance(mailer, PreparingBackendMixin):
        mailer.inline_css(message)
    envelope = build_envelope(message)
    if envelope is not None:
        return envelope.data
    return bytes(message.message().as_bytes())


def _load(request: HttpRequest, kind: str, key: str) -> Shown:
    if kind == "preview":
        found = get_preview(key)
        if found is None:
            raise Http404(f"No mail preview {key!r}.")
        message = found.build(request)
        return Shown(
            title=found.name,
            description=found.description,
            raw=serialized(message),
            base_url=reverse("hypermail_previews:detail", args=[kind, key]),
            rebuild=lambda: found.build(request),
        )
    entries = list(get_outbox())
    if not key.isdigit() or int(key) >= len(entries):
        raise Http404("No such message in the outbox.")
    entry = entries[int(key)]
    return Shown(
        title=entry.subject or "(no subject)",
        description=f"Kept by the memory backend for {', '.join(entry.recipients)}",
        raw=entry.data,
        base_url=reverse("hypermail_previews:detail", args=[kind, key]),
    )


@_guard
def index(request: HttpRequest) -> HttpResponse:
    """Every preview, then the memory backend's outbox, newest first."""
    entries = list(enumerate(get_outbox()))
    entries.reverse()
    return render(
        request,
        "hypermail_django/previews/index.html",
        {"previews": get_previews(), "outbox": entries},
    )


@_guard
def detail(request: HttpRequest, kind: str, key: str) -> HttpResponse:
    """One message: HTML at two widths, text, headers, attachments, source."""
    shown = _load(request, kind, key)
    mail: MailView = view_of(shown.raw)
    images = request.GET.get("images") == "1"
    frame = shown.base_url + "html/" + ("?images=1" if images else "")
    return render(
        request,
        "hypermail_django/previews/detail.html",
        {
            "shown": shown,
            "kind": kind,
            "key": key,
            "mail": mail,
            "frame_url": frame,
            "images_on": images,
            "images_url": shown.base_url + "?images=1",
            "no_images_url": shown.base_url,
            "part_url": shown.base_url + "part/",
            "widths": WIDTHS,
            "can_send": shown.rebuild is not None,
            "user_email": _user_email(request),
            "sent": request.GET.get("sent") == "1",
        },
    )


@_guard
def html(request: HttpRequest, kind: str, key: str) -> HttpResponse:
    """The HTML part, for the sandboxed frames."""
    mail = view_of(_load(request, kind, key).raw)
    return sandboxed_html(
        mail.html_for_frame() or "", remote_images=request.GET.get("images") == "1"
    )


@_guard
def source(request: HttpRequest, kind: str, key: str) -> HttpResponse:
    """The raw message, as plain text."""
    response = HttpResponse(
        _load(request, kind, key).raw, content_type="text/plain; charset=utf-8"
    )
    # text/plain, never sniffed: the browser shows it as text, whatever it holds.
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'"
    return response


@_guard
def part(request: HttpRequest, kind: str, key: str, index: str) -> HttpResponse:
    """One attachment or inline image, as a download."""
    mail = view_of(_load(request, kind, key).raw)
    number = int(index)
    if number >= len(mail.parts):
        raise Http404("No such part.")
    found = mail.parts[number]
    return download(mail.part_content(number), found.filename, found.content_type)


def _user_email(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    return str(getattr(user, user.get_email_field_name(), "") or "")


@_guard
@require_POST
def send_to_me(request: HttpRequest, kind: str, key: str) -> HttpResponse:
    """Send the preview through the configured mailer to the logged-in user."""
    address = _user_email(request)
    shown = _load(request, kind, key)
    if not address or shown.rebuild is None:
        raise Http404("Log in as a user with an email address to send a preview.")
    message = shown.rebuild()
    message.to, message.cc, message.bcc = [address], [], []
    message.send()
    return HttpResponseRedirect(shown.base_url + "?sent=1")
