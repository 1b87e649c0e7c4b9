"""Mail previews: every email of a project, in the browser, before it is sent.

Declare a preview in a ``mail_previews.py`` module of any installed app::

    from hypermail_django.previews import preview

    @preview
    def order_shipped():
        return order_shipped_email(sample_order())   # any Django EmailMessage

and serve the pages with ``path("mail-previews/",
include("hypermail_django.previews.urls"))`` -- shown only with ``DEBUG`` or
to staff. See ``docs/previews.md``.
"""

from .registry import Preview, autodiscover, get_preview, get_previews, preview

__all__ = ["Preview", "autodiscover", "get_preview", "get_previews", "preview"]
