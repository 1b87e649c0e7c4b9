"""The delivery log's app config: connects the recorders when Django starts."""

from django.apps import AppConfig


class DeliveryLogConfig(AppConfig):
    name = "hypermail_django.log"
    label = "hypermail_log"
    verbose_name = "Email delivery log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import recording

        recording.connect()
