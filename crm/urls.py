from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

api_v1 = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("", include("orgs.api.urls")),
    path("", include("customization.api.urls")),
    path("", include("contacts.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

handler404 = "crm.api.views.not_found"
handler500 = "crm.api.views.server_error"
