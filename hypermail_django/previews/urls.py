"""``path("mail-previews/", include("hypermail_django.previews.urls"))``."""

from django.urls import path, re_path

from . import views

app_name = "hypermail_previews"

_KIND = r"(?P<kind>preview|outbox)/(?P<key>[\w.\-]+)"

urlpatterns = [
    path("", views.index, name="index"),
    re_path(rf"^{_KIND}/$", views.detail, name="detail"),
    re_path(rf"^{_KIND}/html/$", views.html, name="html"),
    re_path(rf"^{_KIND}/source/$", views.source, name="source"),
    re_path(rf"^{_KIND}/part/(?P<index>[0-9]+)/$", views.part, name="part"),
    re_path(rf"^{_KIND}/send/$", views.send_to_me, name="send"),
]
