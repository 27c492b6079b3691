from rest_framework.routers import SimpleRouter

from contacts.api import extras_urls, history_urls, import_urls, search_urls, views

router = SimpleRouter(trailing_slash=False)
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("opportunities", views.OpportunityViewSet, basename="opportunity")

# Sub-areas own their url modules (search and views, import, per-contact tags/custom values);
# they come before the router so `contacts/search` is not read as a contact id.
urlpatterns = [
    # Spliced in, not include()d: every include a request passes costs a Resolver404 on the way.
    *search_urls.urlpatterns,
    *import_urls.urlpatterns,
    *extras_urls.urlpatterns,
    *history_urls.urlpatterns,
    *router.urls,
]
