"""Per-contact tags and custom values: any role, on contacts the caller can see (404 otherwise).

Writes lock the contact row and go through `contacts.services`, which add or remove only the
tags and keys named, so concurrent writes to other keys, tags or fields are not lost.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from contacts.models import Contact
from contacts.normalize import MAX_TAGS_PER_CONTACT, ContactNormalizer
from contacts.services import add_tags, remove_tag, set_custom_values, touch
from crm.api.serializer_fields import StrictCharField
from crm.api.viewsets import OrgScopedViewMixin
from crm.errors import FieldError, InvalidInput
from customization.api.field_values import FIELD_VALUE_SCHEMAS
from customization.api.serializers import KEY_RE, TagNameField
from customization.catalog import ensure_tags, normalize_tag
from customization.field_types import FieldValueError
from customization.models import CustomField

_ID_PARAM = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Contact id.")


@extend_schema_field(
    {"anyOf": FIELD_VALUE_SCHEMAS, "nullable": True, "description": "Typed by the field's data_type; null clears it."}
)
class CustomValueField(serializers.JSONField):
    pass


class ContactCustomValueSerializer(serializers.Serializer):
    value = CustomValueField(allow_null=True)


class ContactCustomValueResponseSerializer(serializers.Serializer):
    key = StrictCharField()
    value = CustomValueField(allow_null=True, help_text="The canonical stored form; null when cleared.")


class ContactTagsRequestSerializer(serializers.Serializer):
    tags = serializers.ListField(
        child=TagNameField(),
        max_length=MAX_TAGS_PER_CONTACT,
        help_text="Names to add; unknown names join the org's tag catalog.",
    )


class ContactTagsResponseSerializer(serializers.Serializer):
    tags = serializers.ListField(child=StrictCharField(), help_text="The contact's tags after the change.")


class ContactWriteView(OrgScopedViewMixin, GenericAPIView):
    """A contact found through `Contact.objects.for_member`, locked for the write."""

    queryset_model = Contact
    lookup_url_kwarg = "pk"
    lock = True

    def refine_queryset(self, qs):
        return qs.select_for_update(of=("self",)) if self.lock else qs


class ContactCustomValueView(ContactWriteView):
    serializer_class = ContactCustomValueSerializer

    @extend_schema(
        summary="Set one custom value of a contact",
        description="Any role. The value is validated by the field's type and stored in canonical JSON form "
        "(number as number, date `YYYY-MM-DD`, datetime UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ`, options in their "
        "defined casing); `null` clears it. 404 for an undefined key or a contact the caller cannot see; "
        "422 (`attr` `value`) when the value does not fit the type.",
        request=ContactCustomValueSerializer,
        responses=ContactCustomValueResponseSerializer,
        parameters=[
            _ID_PARAM,
            OpenApiParameter(
                "key", OpenApiTypes.STR, OpenApiParameter.PATH, description="Key of a custom field of the org."
            ),
        ],
        examples=[
            OpenApiExample("date", value={"value": "2026-03-15"}, request_only=True),
            OpenApiExample("stored", value={"key": "renewal_date", "value": "2026-03-15"}, response_only=True),
        ],
    )
    def put(self, request, pk, key):
        membership = self.membership
        with transaction.atomic():
            contact = self.get_object()
            field = (
                CustomField.objects.for_member(membership).filter(key=key).first() if KEY_RE.fullmatch(key) else None
            )
            if field is None:
                raise NotFound(f"No custom field with key {key!r}.")
            body = ContactCustomValueSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            normalizer = ContactNormalizer(org=membership.org, membership=membership, custom_fields={key: field})
            try:
                value = normalizer.clean_custom_value(key, body.validated_data["value"])
            except FieldValueError as exc:
                raise InvalidInput([FieldError("value", exc.code, str(exc))])
            set_custom_values(contact, {key: value}, normalizer.custom_fields)
            touch(contact)
        return Response({"key": key, "value": value})


class ContactTagsView(ContactWriteView):
    serializer_class = ContactTagsRequestSerializer

    @extend_schema(
        summary="Add tags to a contact",
        description="Any role. Names are normalized; ones the contact has are ignored; unknown ones join the "
        f"tag catalog. At most {MAX_TAGS_PER_CONTACT} tags per contact (422).",
        request=ContactTagsRequestSerializer,
        responses=ContactTagsResponseSerializer,
        parameters=[_ID_PARAM],
        examples=[
            OpenApiExample("add", value={"tags": ["VIP", "replied-interested"]}, request_only=True),
            OpenApiExample("after", value={"tags": ["newsletter", "vip", "replied-interested"]}, response_only=True),
        ],
    )
    def post(self, request, pk):
        with transaction.atomic():
            # Lock order (docs/decisions.md): the tag catalog before the contact, as an import takes
            # them. Found unlocked first, so a contact the caller cannot see adds nothing to the catalog.
            self.lock = False
            self.get_object()
            body = ContactTagsRequestSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            ensure_tags(self.membership.org_id, body.validated_data["tags"])
            self.lock = True
            contact = self.get_object()
            before = contact.tags
            add_tags(contact, body.validated_data["tags"])
            after = contact.tags
            if after != before:
                touch(contact)
        return Response({"tags": after})


class ContactTagView(ContactWriteView):
    serializer_class = ContactTagsResponseSerializer

    @extend_schema(
        summary="Remove a tag from a contact",
        description="Any role. Idempotent: removing a tag the contact does not have answers 200 unchanged. "
        "The tag stays in the catalog.",
        request=None,
        responses={200: ContactTagsResponseSerializer},
        parameters=[_ID_PARAM, OpenApiParameter("name", OpenApiTypes.STR, OpenApiParameter.PATH)],
        examples=[OpenApiExample("after", value={"tags": ["newsletter"]}, response_only=True)],
    )
    def delete(self, request, pk, name):
        with transaction.atomic():
            contact = self.get_object()
            try:
                name = normalize_tag(name)
            except ValueError:
                name = None  # not a valid tag name, so not on the contact
            if name is not None and remove_tag(contact, name):
                touch(contact)
        return Response({"tags": contact.tags})
