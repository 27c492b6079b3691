from django.urls import path

from orgs.api import views

urlpatterns = [
    path("auth/token", views.TokenView.as_view(), name="auth-token"),
    path("me", views.MeView.as_view(), name="me"),
    path("org", views.CurrentOrgView.as_view(), name="org"),
]
