"""Per-contact tags and custom values, the trash and merges (included before the contacts router)."""

from django.urls import path

from contacts.api import extras_views, merge_views, trash_views

urlpatterns = [
    path("contacts/merge", merge_views.ContactMergeView.as_view(), name="contact-merge"),
    path("contacts/merges/<str:pk>/undo", merge_views.MergeUndoView.as_view(), name="contact-merge-undo"),
    path("contacts/trash", trash_views.TrashListView.as_view(), name="contact-trash"),
    path("contacts/trash/<str:pk>", trash_views.TrashedContactView.as_view(), name="contact-trash-entry"),
    path("contacts/<str:pk>/restore", trash_views.ContactRestoreView.as_view(), name="contact-restore"),
    path(
        "contacts/<str:pk>/custom/<str:key>", extras_views.ContactCustomValueView.as_view(), name="contact-custom-value"
    ),
    path("contacts/<str:pk>/tags", extras_views.ContactTagsView.as_view(), name="contact-tags"),
    path("contacts/<str:pk>/tags/<path:name>", extras_views.ContactTagView.as_view(), name="contact-tag"),
]
