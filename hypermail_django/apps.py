"""The app config of ``hypermail_django``: templates, commands, system checks."""

from django.apps import AppConfig


class HypermailConfig(AppConfig):
    """Installs the templates, management commands and system checks; the
    backend itself needs no app."""

    name = "hypermail_django"
    verbose_name = "Hypermail"

    def ready(self) -> None:
        # Importing the module registers its checks (hypermail.E001...).
        from . import checks  # noqa: F401
