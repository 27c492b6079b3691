from django.urls import path

from contacts.api.import_views import ContactImportView

urlpatterns = [
    path("contacts/import", ContactImportView.as_view(), name="contact-import"),
]
