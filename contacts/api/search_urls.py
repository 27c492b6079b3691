"""`contacts/search`, `contacts/fields`, `contacts/views`, `contacts/export`, `contacts/bulk`,
`contacts/duplicates` (included before the contacts router)."""

from django.urls import path

from contacts.api import bulk_views, duplicates_views, export_views, search_views

urlpatterns = [
    path("contacts/search", search_views.ContactSearchView.as_view(), name="contact-search"),
    path("contacts/fields", search_views.ContactFieldsView.as_view(), name="contact-fields"),
    path("contacts/views", search_views.SavedViewsView.as_view(), name="contact-views"),
    path("contacts/export", export_views.ContactExportView.as_view(), name="contact-export"),
    path("contacts/bulk", bulk_views.ContactBulkView.as_view(), name="contact-bulk"),
    path("contacts/duplicates", duplicates_views.DuplicatesView.as_view(), name="contact-duplicates"),
    path(
        "contacts/duplicates/dismiss",
        duplicates_views.DismissDuplicatesView.as_view(),
        name="contact-duplicates-dismiss",
    ),
]
