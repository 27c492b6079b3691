from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from changes.api import urls as changes_urls
from contacts.api import urls as contacts_urls
from customization.api import urls as customization_urls
from jobs.api import urls as jobs_urls
from orgs.api import urls as orgs_urls
from webhooks.api import urls as webhooks_urls

# Each app's patterns spliced into one flat list rather than include()d: resolving walks the
# list in order, and every include a request passes without matching costs a Resolver404.
# Contacts (the busiest) first; no two apps' patterns overlap.
api_v1 = [
    *contacts_urls.urlpatterns,
    *orgs_urls.urlpatterns,
    *customization_urls.urlpatterns,
    *jobs_urls.urlpatterns,
    *changes_urls.urlpatterns,
    *webhooks_urls.urlpatterns,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

handler404 = "crm.api.views.not_found"
handler500 = "crm.api.views.server_error"
