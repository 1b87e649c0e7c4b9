"""URLs for tests that go through Django's request handlers (ASGI included)."""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from hypermail_django.async_mail import asend_mail


async def notify(request: HttpRequest) -> JsonResponse:
    """An async view that sends mail without blocking the event loop."""
    sent = await asend_mail(
        "Notification", "Something happened.", None, [request.GET["to"]]
    )
    return JsonResponse({"sent": sent})


urlpatterns = [path("notify/", notify)]
