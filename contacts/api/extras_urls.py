"""Per-contact tags and custom values, and the trash (included before the contacts router)."""

from django.urls import path

from contacts.api import extras_views, trash_views

urlpatterns = [
    path("contacts/trash", trash_views.TrashListView.as_view(), name="contact-trash"),
    path("contacts/trash/<str:pk>", trash_views.TrashedContactView.as_view(), name="contact-trash-entry"),
    path("contacts/<str:pk>/restore", trash_views.ContactRestoreView.as_view(), name="contact-restore"),
    path(
        "contacts/<str:pk>/custom/<str:key>", extras_views.ContactCustomValueView.as_view(), name="contact-custom-value"
    ),
    path("contacts/<str:pk>/tags", extras_views.ContactTagsView.as_view(), name="contact-tags"),
    path("contacts/<str:pk>/tags/<path:name>", extras_views.ContactTagView.as_view(), name="contact-tag"),
]
