from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "API plumbing"

    def ready(self):
        from crm.api import schema_extensions, strict_types  # noqa: F401

        strict_types.install()
