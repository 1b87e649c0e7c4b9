from django.apps import AppConfig


class HypermailConfig(AppConfig):
    """Installs the templates and management commands; the backend needs no app."""

    name = "hypermail_django"
    verbose_name = "Hypermail"
