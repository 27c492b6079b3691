"""Customization endpoints: tag catalog, custom-field folders and fields, custom values, rendering.

Thin views over the scoped queryset API; multi-row writes live in `customization.services`.
Everyone reads; catalog writes (tag rename/delete, folders, fields, custom values) need owner/admin.
"""

from __future__ import annotations

import django_filters
from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from crm.api.exceptions import flatten_errors
from crm.api.idempotency import idempotent
from crm.api.permissions import IsOrgAdmin, IsOrgAdminForWrites
from crm.api.viewsets import OrgScopedModelViewSet, OrgScopedViewMixin, OrgScopedViewSet
from crm.errors import FieldError, InvalidInput
from customization import services
from customization.api.serializers import (
    KEY_RE,
    CustomFieldFolderSerializer,
    CustomFieldSerializer,
    CustomValueSerializer,
    CustomValueWriteSerializer,
    RenderRequestSerializer,
    RenderResponseSerializer,
    TagSerializer,
    TagWriteSerializer,
)
from customization.catalog import tag_contact_counts
from customization.field_types import DATA_TYPES
from customization.models import CustomField, CustomFieldFolder, CustomValue, Tag
from customization.rendering import render_for_member
from customization.text import fold

ADMIN_ONLY = "Owner or admin only (403 for members)."
TAG_QUERY_MAX = 64


def parse_bool_param(request, name: str) -> bool:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return False
    word = raw.strip().lower()
    if word in ("true", "1", "yes"):
        return True
    if word in ("false", "0", "no"):
        return False
    raise InvalidInput([FieldError(name, "invalid", f"{name} must be true or false.")])


# --- tags --------------------------------------------------------------------------------

TAG_EXAMPLE = {"id": 7, "name": "replied-interested", "created_at": "2026-03-15T09:30:00Z"}


@extend_schema_view(
    list=extend_schema(
        summary="List the tag catalog",
        description="Ordered by name. With `with_counts=true` each tag carries `contact_count`, the number of "
        "contacts visible to the caller that carry it (one grouped query per page).",
        parameters=[
            OpenApiParameter("with_counts", OpenApiTypes.BOOL, description="Add `contact_count` to each tag."),
            OpenApiParameter(
                "q",
                {"type": "string", "maxLength": TAG_QUERY_MAX},
                description=f"Substring of the name (≤ {TAG_QUERY_MAX} chars).",
            ),
        ],
        examples=[
            OpenApiExample(
                "with counts",
                response_only=True,
                value={"count": 1, "next": None, "previous": None, "results": [{**TAG_EXAMPLE, "contact_count": 42}]},
            )
        ],
    ),
    retrieve=extend_schema(
        summary="Get a tag", examples=[OpenApiExample("tag", value=TAG_EXAMPLE, response_only=True)]
    ),
    create=extend_schema(
        summary="Add a tag to the catalog",
        request=TagWriteSerializer,
        responses={201: TagSerializer},
        description="Any role. The name is normalized (trimmed, case-folded); 409 when it exists (with `existing_id`).",
        examples=[
            OpenApiExample("tag", value={"name": "Replied-Interested"}, request_only=True),
            OpenApiExample("created", value=TAG_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    ),
    partial_update=extend_schema(
        summary="Rename a tag (and on every contact)",
        request=TagWriteSerializer,
        responses=TagSerializer,
        description=f"{ADMIN_ONLY} Renames it on every contact of the org in the same transaction; a contact "
        "that already had the new name keeps it once. 409 when another tag has the new name.",
        examples=[OpenApiExample("rename", value={"name": "interested"}, request_only=True)],
    ),
    destroy=extend_schema(
        summary="Delete a tag (and from every contact)",
        description=f"{ADMIN_ONLY} Removes it from every contact of the org in the same transaction.",
    ),
)
class TagViewSet(OrgScopedModelViewSet):
    queryset_model = Tag
    serializer_class = TagSerializer
    error_statuses = ("409",)

    def get_permissions(self):
        permissions = super().get_permissions()
        if self.action in ("partial_update", "destroy"):
            permissions.append(IsOrgAdmin())
        return permissions

    def refine_queryset(self, qs):
        raw = self.request.query_params.get("q", "")
        q = fold(raw.strip())  # tag names are stored case-folded
        if len(raw) > TAG_QUERY_MAX:  # the published maxLength applies to what was sent
            raise InvalidInput([FieldError("q", "too_long", f"q is at most {TAG_QUERY_MAX} characters.")])
        if "\x00" in q:
            raise InvalidInput([FieldError("q", "invalid", "NUL characters are not allowed.")])
        return (qs.filter(name__contains=q) if q else qs).order_by("name", "id")

    def list(self, request, *args, **kwargs):
        with_counts = parse_bool_param(request, "with_counts")
        page = self.paginate_queryset(self.get_queryset())
        context = self.get_serializer_context()
        if with_counts:
            context["tag_counts"] = tag_contact_counts(self.membership, [tag.name for tag in page])
        return self.get_paginated_response(TagSerializer(page, many=True, context=context).data)

    @idempotent
    def create(self, request, *args, **kwargs):
        write = TagWriteSerializer(data=request.data)
        write.is_valid(raise_exception=True)
        tag = services.create_tag(self.membership.org_id, write.validated_data["name"])
        return Response(TagSerializer(tag).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        tag = self.get_object()
        write = TagWriteSerializer(data=request.data, partial=True)
        write.is_valid(raise_exception=True)
        if "name" in write.validated_data:  # PATCH semantics: no name, nothing to change
            tag = services.rename_tag(tag, write.validated_data["name"])
        return Response(TagSerializer(tag).data)

    def perform_destroy(self, instance):
        services.delete_tag(instance)


# --- folders -----------------------------------------------------------------------------

FOLDER_EXAMPLE = {"id": 3, "name": "Qualification", "position": 0, "created_at": "2026-03-15T09:30:00Z"}


@extend_schema_view(
    list=extend_schema(summary="List custom-field folders", description="Ordered by position."),
    retrieve=extend_schema(summary="Get a folder"),
    create=extend_schema(
        summary="Create a folder",
        description=f"{ADMIN_ONLY} Names are unique per org ignoring case (409).",
        examples=[
            OpenApiExample("folder", value={"name": "Qualification"}, request_only=True),
            OpenApiExample("created", value=FOLDER_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    ),
    partial_update=extend_schema(
        summary="Rename or move a folder",
        description=ADMIN_ONLY,
        examples=[OpenApiExample("rename", value={"name": "Lead qualification", "position": 2}, request_only=True)],
    ),
    destroy=extend_schema(summary="Delete a folder", description=f"{ADMIN_ONLY} Its fields become unfiled."),
)
class CustomFieldFolderViewSet(OrgScopedModelViewSet):
    queryset_model = CustomFieldFolder
    serializer_class = CustomFieldFolderSerializer
    permission_classes = [*OrgScopedViewMixin.permission_classes, IsOrgAdminForWrites]
    error_statuses = ("409",)

    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        data = serializer.validated_data
        folder = CustomFieldFolder(org_id=self.membership.org_id, name=data["name"], position=data.get("position"))
        serializer.instance = services.save_folder(folder)

    def perform_update(self, serializer):
        folder = serializer.instance
        for attr, value in serializer.validated_data.items():
            setattr(folder, attr, value)
        serializer.instance = services.save_folder(folder)


# --- custom fields -----------------------------------------------------------------------

FIELD_EXAMPLE = {
    "id": 12,
    "key": "plan",
    "name": "Plan",
    "data_type": "single_select",
    "folder": 3,
    "options": ["Free", "Pro", "Enterprise"],
    "position": 0,
}


class CustomFieldFilterSet(django_filters.FilterSet):
    folder = django_filters.NumberFilter(field_name="folder_id", help_text="Only fields in this folder.")
    data_type = django_filters.ChoiceFilter(choices=[(t, t) for t in DATA_TYPES])

    class Meta:
        model = CustomField
        fields = ["folder", "data_type"]


@extend_schema_view(
    list=extend_schema(summary="List custom fields", description="Ordered by position."),
    retrieve=extend_schema(summary="Get a custom field"),
    create=extend_schema(
        summary="Define a custom field",
        description=f"{ADMIN_ONLY} `key` is derived from `name` when absent; 409 when the key exists.",
        examples=[
            OpenApiExample(
                "single_select",
                request_only=True,
                value={
                    "name": "Plan",
                    "data_type": "single_select",
                    "folder": 3,
                    "options": ["Free", "Pro", "Enterprise"],
                },
            ),
            OpenApiExample(
                "number", request_only=True, value={"key": "lead_score", "name": "Lead score", "data_type": "number"}
            ),
            OpenApiExample("created", value=FIELD_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    ),
    partial_update=extend_schema(
        summary="Update a custom field",
        description=f"{ADMIN_ONLY} `name`, `folder`, `options`, `position` change; `key` and `data_type` cannot "
        "(422). Values no longer among the options stay on contacts until rewritten.",
        examples=[OpenApiExample("options", request_only=True, value={"options": ["Free", "Pro", "Business"]})],
    ),
    destroy=extend_schema(
        summary="Delete a custom field",
        description=f"{ADMIN_ONLY} Its values are removed from every contact of the org.",
    ),
)
class CustomFieldViewSet(OrgScopedModelViewSet):
    queryset_model = CustomField
    serializer_class = CustomFieldSerializer
    filterset_class = CustomFieldFilterSet
    permission_classes = [*OrgScopedViewMixin.permission_classes, IsOrgAdminForWrites]
    error_statuses = ("409",)

    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.instance = services.create_field(self.membership.org_id, dict(serializer.validated_data))

    def perform_update(self, serializer):
        values = {k: v for k, v in serializer.validated_data.items() if k not in ("key", "data_type")}
        serializer.instance = services.update_field(serializer.instance, values)

    def perform_destroy(self, instance):
        services.delete_field(instance)


# --- custom values -----------------------------------------------------------------------

VALUE_EXAMPLE = {
    "key": "calendar_link",
    "value": "https://cal.example.com/acme",
    "created_at": "2026-03-15T09:30:00Z",
    "updated_at": "2026-03-15T09:30:00Z",
}


CUSTOM_VALUE_KEY = OpenApiParameter("key", str, OpenApiParameter.PATH, pattern=KEY_RE.pattern)


@extend_schema_view(
    list=extend_schema(summary="List custom values", description="The org's token store, ordered by key."),
    retrieve=extend_schema(summary="Get a custom value", parameters=[CUSTOM_VALUE_KEY]),
    destroy=extend_schema(
        summary="Delete a custom value", description=f"{ADMIN_ONLY} 404 when absent.", parameters=[CUSTOM_VALUE_KEY]
    ),
)
class CustomValueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset_model = CustomValue
    serializer_class = CustomValueSerializer
    permission_classes = [*OrgScopedViewMixin.permission_classes, IsOrgAdminForWrites]
    lookup_field = "key"
    lookup_value_regex = r"[^/]+"

    def check_lookup(self, value):
        if not KEY_RE.fullmatch(value):
            raise NotFound("No custom value with this key.")  # cannot exist; never reaches SQL

    @extend_schema(
        parameters=[CUSTOM_VALUE_KEY],
        summary="Create or replace a custom value",
        description=f"{ADMIN_ONLY} 201 when created, 200 when replaced. Rendered as `{{{{custom_values.<key>}}}}`.",
        request=CustomValueWriteSerializer,
        responses={200: CustomValueSerializer, 201: CustomValueSerializer},
        examples=[
            OpenApiExample("link", value={"value": "https://cal.example.com/acme"}, request_only=True),
            OpenApiExample("stored", value=VALUE_EXAMPLE, response_only=True, status_codes=["200", "201"]),
        ],
    )
    def update(self, request, key=None):
        errors = []
        if not KEY_RE.fullmatch(key):
            errors.append(FieldError("key", "invalid_key", "Keys match ^[a-z][a-z0-9_]{0,63}$."))
        write = CustomValueWriteSerializer(data=request.data)
        if not write.is_valid():
            errors += flatten_errors(write.errors)
        if errors:
            raise InvalidInput(errors)
        row, created = services.put_custom_value(self.membership.org_id, key, write.validated_data["value"])
        return Response(CustomValueSerializer(row).data, status=status.HTTP_201_CREATED if created else 200)

    def destroy(self, request, key=None):
        with transaction.atomic():
            self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- rendering ---------------------------------------------------------------------------


class TemplateRenderView(OrgScopedViewMixin, GenericAPIView):
    """Token substitution only: nothing in a template is ever executed."""

    queryset_model = CustomValue
    serializer_class = RenderRequestSerializer
    error_statuses = ("404",)  # `contact_id` not visible to the caller

    @extend_schema(
        summary="Render a template's tokens",
        description="Plain substitution of `{{contact.<field>}}`, `{{contact.custom.<key>}}` and "
        "`{{custom_values.<key>}}` (whitespace inside the braces allowed). A token without a value renders "
        "as empty and is listed in `missing`; a `contact.`/`custom_values.` token outside that grammar is left "
        "verbatim and listed; any other `{{…}}` or `{%…%}` is plain text. 404 when `contact_id` is not "
        "visible to the caller.",
        request=RenderRequestSerializer,
        responses=RenderResponseSerializer,
        examples=[
            OpenApiExample(
                "template",
                request_only=True,
                value={
                    "template": "Hi {{contact.first_name}}, book at {{ custom_values.calendar_link }}",
                    "contact_id": 1,
                },
            ),
            OpenApiExample(
                "rendered",
                response_only=True,
                value={"rendered": "Hi Ada, book at ", "missing": ["custom_values.calendar_link"]},
            ),
        ],
    )
    def post(self, request):
        body = RenderRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        result = render_for_member(
            self.membership, body.validated_data["template"], body.validated_data.get("contact_id")
        )
        if result is None:
            raise NotFound("No such contact.")
        return Response(RenderResponseSerializer({"rendered": result.rendered, "missing": result.missing}).data)
