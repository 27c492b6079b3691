"""Staff views of the org catalogs. Edits here bypass the API's propagation (renaming a tag
here does not rename it on contacts), so the catalog's names and keys are read-only once saved."""

from django.contrib import admin

from customization.models import CustomField, CustomFieldFolder, CustomValue, Tag


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "org", "created_at"]
    list_filter = ["org"]
    search_fields = ["name"]
    raw_id_fields = ["org"]
    list_select_related = ["org"]

    def get_readonly_fields(self, request, obj=None):
        return ["name"] if obj is not None else []


@admin.register(CustomFieldFolder)
class CustomFieldFolderAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "org", "position", "created_at"]
    list_filter = ["org"]
    search_fields = ["name"]
    raw_id_fields = ["org"]
    list_select_related = ["org"]


@admin.register(CustomField)
class CustomFieldAdmin(admin.ModelAdmin):
    list_display = ["id", "key", "name", "data_type", "folder", "org", "position", "updated_at"]
    list_filter = ["org", "data_type"]
    search_fields = ["key", "name"]
    raw_id_fields = ["org", "folder"]
    list_select_related = ["org", "folder"]

    def get_readonly_fields(self, request, obj=None):
        # key and data_type never change after creation (stored values depend on both).
        return ["key", "data_type"] if obj is not None else []


@admin.register(CustomValue)
class CustomValueAdmin(admin.ModelAdmin):
    list_display = ["id", "key", "org", "updated_at"]
    list_filter = ["org"]
    search_fields = ["key", "value"]
    raw_id_fields = ["org"]
    list_select_related = ["org"]
