from django.apps import AppConfig


class CustomizationConfig(AppConfig):
    name = "customization"
