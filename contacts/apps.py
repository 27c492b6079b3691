from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self):
        # Keep contacts in step with catalog changes announced by `customization.signals`.
        from contacts import receivers  # noqa: F401
