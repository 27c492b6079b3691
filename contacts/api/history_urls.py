"""A contact's change history (included before the contacts router)."""

from django.urls import path

from contacts.api import history_views

urlpatterns = [
    path("contacts/<str:pk>/history", history_views.ContactHistoryView.as_view(), name="contact-history"),
]
