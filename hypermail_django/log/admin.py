"""The delivery log in Django's admin: find a message, see what each server said.

Read-only. Search looks up an exact recipient address, an exact Message-ID
(with or without its angle brackets) or the start of a subject -- each an
index lookup, so it answers at once on millions of rows (a ``LIKE '%x%'``
scan would not). Bodies are shown, exported and resent only to users with
the ``view_body`` and ``resend_delivery`` permissions, and the HTML only in a
sandboxed frame (see :mod:`hypermail_django.previews.sandbox`).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from ..exceptions import FluxMailException
from ..previews.mailview import view_of
from ..previews.sandbox import download, sandboxed_html
from .models import Delivery, Recipient
from .resend import eml_name, export_zip, resend_all

BODY_PERMISSION = "hypermail_log.view_body"
RESEND_PERMISSION = "hypermail_log.resend_delivery"
#: Matches kept per kind of lookup (address, Message-ID, subject prefix).
SEARCH_LIMIT = 1000


class RecipientInline(admin.TabularInline):
    model = Recipient
    fields = ["address", "kind", "status", "code", "reply", "at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "recipients: what each server said"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Who may see a delivery may see its recipients.
        return bool(request.user.has_perm("hypermail_log.view_delivery"))


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "subject",
        "addresses",
        "status",
        "mailer",
        "attempts",
        "via",
    ]
    list_filter = ["status", "mailer", "created_at", "via"]
    search_fields = ["message_id"]  # Shows the box; the lookup is our own.
    search_help_text = (
        "An exact recipient address or Message-ID, or the start of a subject "
        "(case matters; at most 1000 matches of each)."
    )
    show_full_result_count = False
    # Counting every filter's choices (facets) reads the whole table.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    inlines = [RecipientInline]
    readonly_fields = [
        "message_id",
        "subject",
        "from_email",
        "created_at",
        "status",
        "mailer",
        "via",
        "attempts",
        "size",
        "error_code",
        "error",
        "original",
        "resent_as",
    ]
    fields = readonly_fields
    actions = ["resend_selected", "export_selected"]
    change_form_template = "hypermail_django/log/delivery_change_form.html"

    # -- list ---------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).defer("raw").prefetch_related("recipients")

    @admin.display(description="recipients")
    def addresses(self, obj: Delivery) -> str:
        shown = [r.address for r in obj.recipients.all()]
        more = f" (+{len(shown) - 3})" if len(shown) > 3 else ""
        return ", ".join(shown[:3]) + more

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Delivery], search_term: str
    ) -> tuple[QuerySet[Delivery], bool]:
        """Three index lookups, each run on its own, then ``pk IN (...)``.

        One query OR-ing them (or joining the recipients) lets the database
        prefer walking the date index of the whole table to find the newest
        matches: seconds on a million rows. The subject is matched as a range
        (``>= term`` and ``< term + U+FFFF``), which a plain index answers on
        every database, where ``LIKE 'term%'`` does not on SQLite.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        bare = term.strip("<>")
        found: set[int] = set()
        lookups = [
            Recipient.objects.filter(address=term.lower()).values_list(
                "delivery_id", flat=True
            ),
            Delivery.objects.filter(message_id__in=[term, f"<{bare}>"]).values_list(
                "pk", flat=True
            ),
            Delivery.objects.filter(
                subject__gte=term, subject__lt=term + "\uffff"
            ).values_list("pk", flat=True),
        ]
        for lookup in lookups:
            found.update(lookup.order_by()[:SEARCH_LIMIT])
        return queryset.filter(pk__in=found), False

    # -- detail -------------------------------------------------------------------

    @admin.display(description="resend of")
    def original(self, obj: Delivery) -> str:
        if obj.resent_from_id is None:
            return "-"
        url = reverse("admin:hypermail_log_delivery_change", args=[obj.resent_from_id])
        return format_html('<a href="{}">{}</a>', url, obj.resent_from)

    @admin.display(description="resent as")
    def resent_as(self, obj: Delivery) -> str:
        resends = list(obj.resends.all())
        if not resends:
            return "-"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:hypermail_log_delivery_change", args=[r.pk]), r)
                for r in resends
            ),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(RESEND_PERMISSION))

    def has_body_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(BODY_PERMISSION))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Every name the page and mailview/message.html look up is defined: a
        # failed lookup makes django.template log the whole context at DEBUG,
        # the message's addresses and links included.
        extra = {
            "delivery_headers": "",
            "kept": False,
            "mail": None,
            "frame_url": "",
            "images_on": False,
            "eml_url": "",
            "can_resend": False,
            "widths": None,
            "part_url": None,
            **(extra_context or {}),
        }
        delivery = self.get_object(request, object_id)
        if delivery is not None:
            extra["delivery_headers"] = delivery.headers
            raw = delivery.message_bytes()
            extra["kept"] = raw is not None
            if raw is not None and self.has_body_permission(request):
                images = request.GET.get("images") == "1"
                frame = reverse("admin:hypermail_log_delivery_html", args=[delivery.pk])
                extra["mail"] = view_of(raw)
                extra["frame_url"] = frame + ("?images=1" if images else "")
                extra["images_on"] = images
                extra["eml_url"] = reverse(
                    "admin:hypermail_log_delivery_eml", args=[delivery.pk]
                )
            extra["can_resend"] = raw is not None and self.has_resend_permission(
                request
            )
        return super().change_view(request, object_id, form_url, extra)

    def get_urls(self) -> list[Any]:
        own = [
            path(
                "<int:pk>/html/",
                self.admin_site.admin_view(self.html_view),
                name="hypermail_log_delivery_html",
            ),
            path(
                "<int:pk>/eml/",
                self.admin_site.admin_view(self.eml_view),
                name="hypermail_log_delivery_eml",
            ),
        ]
        return own + super().get_urls()

    def _kept(self, request: HttpRequest, pk: int) -> tuple[Delivery, bytes]:
        if not (
            self.has_view_permission(request) and self.has_body_permission(request)
        ):
            raise PermissionDenied
        delivery = get_object_or_404(Delivery, pk=pk)
        raw = delivery.message_bytes()
        if raw is None:
            raise Http404("Only the headers of this message were kept.")
        return delivery, raw

    def html_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The HTML part, for the sandboxed frame of the detail page."""
        _delivery, raw = self._kept(request, pk)
        html = view_of(raw).html_for_frame() or ""
        return sandboxed_html(html, remote_images=request.GET.get("images") == "1")

    def eml_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        delivery, raw = self._kept(request, pk)
        return download(raw, eml_name(delivery), "message/rfc822")

    # -- actions ------------------------------------------------------------------

    @admin.action(description="Resend selected messages", permissions=["resend"])
    def resend_selected(
        self, request: HttpRequest, queryset: QuerySet[Delivery]
    ) -> None:
        try:
            copies = resend_all(queryset.defer(None))
        except FluxMailException as error:
            # Not kept whole, or background delivery is not configured
            # (TASKS): nothing was enqueued; say what to fix.
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(
            request,
            f"Queued {len(copies)} message(s) for background delivery: "
            + ", ".join(c.message_id for c in copies),
            messages.SUCCESS,
        )

    @admin.action(description="Export selected as .eml", permissions=["body"])
    def export_selected(
        self, request: HttpRequest, queryset: QuerySet[Delivery]
    ) -> HttpResponse | None:
        chosen = list(queryset.defer(None))
        kept = [d for d in chosen if d.raw is not None]
        if not kept:
            self.message_user(
                request,
                "None of these messages was kept whole (HYPERMAIL_LOG_KEEP = "
                "'headers'): there is nothing to export.",
                messages.WARNING,
            )
            return None
        if len(kept) == 1:
            return download(
                kept[0].message_bytes() or b"", eml_name(kept[0]), "message/rfc822"
            )
        return download(export_zip(kept), "deliveries.zip", "application/zip")
