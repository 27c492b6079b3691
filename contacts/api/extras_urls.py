"""Per-contact tags and custom values (included before the contacts router)."""

from django.urls import path

from contacts.api import extras_views

urlpatterns = [
    path(
        "contacts/<str:pk>/custom/<str:key>", extras_views.ContactCustomValueView.as_view(), name="contact-custom-value"
    ),
    path("contacts/<str:pk>/tags", extras_views.ContactTagsView.as_view(), name="contact-tags"),
    path("contacts/<str:pk>/tags/<path:name>", extras_views.ContactTagView.as_view(), name="contact-tag"),
]
