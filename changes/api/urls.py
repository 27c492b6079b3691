from django.urls import path

from changes.api import views

urlpatterns = [
    path("changes", views.ChangeFeedView.as_view(), name="changes"),
]
