"""Staff views of the org catalogs (tags, custom-field folders and fields, custom values), each
limited to the staff user's organizations (orgs.admin.OrgScopedAdminMixin); changing a catalog
needs the owner or admin role there, as in the API. Writes go through customization.services:
renaming a tag is one row (contacts refer to tags by id), deleting a tag or field deletes its uses.
A field's key and data type never change after creation (stored values depend on both)."""

import re

from django import forms
from django.contrib import admin

from crm.errors import Conflict
from customization import services
from customization.catalog import normalize_tag
from customization.field_types import FIELD_TYPES
from customization.models import KEY_PATTERN, CustomField, CustomFieldFolder, CustomValue, Tag
from customization.text import fold
from orgs.admin import OrgFilter, OrgScopedAdminMixin


class CatalogAdmin(OrgScopedAdminMixin, admin.ModelAdmin):
    catalog_writes = True
    list_filter = [OrgFilter]
    autocomplete_fields = ["org"]
    list_select_related = ["org"]

    def get_readonly_fields(self, request, obj=None):
        return ["org", *self.readonly_fields] if obj is not None else self.readonly_fields


class TagForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ["org", "name"]

    def clean_name(self):
        try:
            return normalize_tag(self.cleaned_data["name"])
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Tag)
class TagAdmin(CatalogAdmin):
    form = TagForm
    list_display = ["name", "org", "created_at"]
    search_fields = ["name"]

    def save_model(self, request, obj, form, change):
        try:
            if change:
                services.rename_tag(Tag.objects.get(pk=obj.pk), obj.name)
            else:
                obj.pk = services.create_tag(obj.org_id, obj.name).pk
        except Conflict as exc:  # a race the form's uniqueness check missed
            self.message_user(request, exc.detail, level="error")

    def delete_model(self, request, obj):
        services.delete_tag(obj)


@admin.register(CustomFieldFolder)
class CustomFieldFolderAdmin(CatalogAdmin):
    list_display = ["name", "org", "position", "created_at"]
    search_fields = ["name"]


class CustomFieldForm(forms.ModelForm):
    options_text = forms.CharField(
        label="Options",
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="Select types: one option per line.",
    )

    class Meta:
        model = CustomField
        fields = ["org", "key", "name", "data_type", "folder", "position"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["options_text"] = "\n".join(self.instance.options or [])

    def clean_key(self):
        key = self.cleaned_data["key"]
        if not re.fullmatch(KEY_PATTERN, key):
            raise forms.ValidationError(f"Keys match {KEY_PATTERN}: lowercase letters, digits and _.")
        return key

    def clean(self):
        cleaned = super().clean()
        data_type = cleaned.get("data_type") or self.instance.data_type
        options = [line.strip() for line in (cleaned.get("options_text") or "").splitlines() if line.strip()]
        field_type = FIELD_TYPES.get(data_type)
        if field_type is not None and field_type.has_options and not options:
            self.add_error("options_text", f"{data_type} fields need at least one option.")
        elif field_type is not None and not field_type.has_options and options:
            self.add_error("options_text", f"{data_type} fields take no options.")
        elif len({fold(option) for option in options}) != len(options):
            self.add_error("options_text", "Options must be unique, ignoring case.")
        folder, org = cleaned.get("folder"), cleaned.get("org") or getattr(self.instance, "org", None)
        if folder is not None and org is not None and folder.org_id != org.pk:
            self.add_error("folder", "A folder of the field's organization.")
        self.instance.options = options
        return cleaned


@admin.register(CustomField)
class CustomFieldAdmin(CatalogAdmin):
    form = CustomFieldForm
    list_display = ["key", "name", "data_type", "folder", "org", "position", "updated_at"]
    list_filter = [OrgFilter, "data_type"]
    search_fields = ["key", "name"]
    list_select_related = ["org", "folder"]

    def get_readonly_fields(self, request, obj=None):
        # key and data_type never change after creation (stored values depend on both).
        return ["org", "key", "data_type"] if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        try:
            names = ("key", "name", "data_type", "folder", "options", "position")
            values = {name: getattr(obj, name) for name in names}
            obj.pk = services.create_field(obj.org_id, values).pk
        except Conflict as exc:
            self.message_user(request, exc.detail, level="error")

    def delete_model(self, request, obj):
        services.delete_field(obj)


@admin.register(CustomValue)
class CustomValueAdmin(CatalogAdmin):
    list_display = ["key", "org", "updated_at"]
    search_fields = ["key", "value"]
