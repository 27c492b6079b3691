from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self):
        # Hooks customization reads contacts through (tag counts, template contexts).
        from contacts import hooks  # noqa: F401
