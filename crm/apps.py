from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "API plumbing"

    def ready(self):
        from crm.api import schema_extensions  # noqa: F401
