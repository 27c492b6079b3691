from django.urls import include, path
from rest_framework.routers import SimpleRouter

from contacts.api import views

router = SimpleRouter(trailing_slash=False)
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("opportunities", views.OpportunityViewSet, basename="opportunity")

# Sub-areas own their url modules (search and views, import, per-contact tags/custom values);
# they come before the router so `contacts/search` is not read as a contact id.
urlpatterns = [
    path("", include("contacts.api.search_urls")),
    path("", include("contacts.api.import_urls")),
    path("", include("contacts.api.extras_urls")),
    *router.urls,
]
