from django.urls import path
from rest_framework.routers import SimpleRouter

from customization.api import views

router = SimpleRouter(trailing_slash=False)
router.register("tags", views.TagViewSet, basename="tag")
router.register("custom-field-folders", views.CustomFieldFolderViewSet, basename="custom-field-folder")
router.register("custom-fields", views.CustomFieldViewSet, basename="custom-field")
router.register("custom-values", views.CustomValueViewSet, basename="custom-value")

urlpatterns = [
    path("templates/render", views.TemplateRenderView.as_view(), name="template-render"),
    *router.urls,
]
