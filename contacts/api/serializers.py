"""Contact and opportunity representations. Validation of contact input is delegated to
`contacts.normalize.ContactNormalizer`, the one place shared with import."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contacts.contact_fields import CONTACT_FIELDS, ContactField
from contacts.currencies import normalize_currency
from contacts.models import Contact, Opportunity, attach_tags_and_custom
from contacts.normalize import ContactNormalizer
from crm.api.serializer_fields import StrictCharField, StrictDecimalField, StrictModelSerializer, StrictRegexField
from crm.errors import FieldError, InvalidInput
from customization.api.field_values import CustomFieldValuesField
from customization.api.serializers import TagNameField


class ContactListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        return super().to_representation(attach_tags_and_custom(list(data)))


def _schema_field(spec: ContactField) -> serializers.Field:
    """How one built-in field appears in the API: type, caps, whether null may be written. Only the
    schema and output use it; writes are validated as a whole by ContactNormalizer."""
    options = {"required": False, "allow_null": True, "label": spec.label, "help_text": spec.help_text or None}
    if not spec.writable:
        return serializers.DateTimeField(read_only=True)
    if spec.type == "tags":
        return serializers.ListField(child=TagNameField(), **options)
    if spec.type == "boolean":
        return serializers.BooleanField(**options)
    if spec.type == "user":
        return serializers.IntegerField(source=spec.column, **options)
    # Text of any kind; an email or phone is given as typed (any phone format) and normalized.
    max_length = spec.max_length or {"email": 254, "phone": 40}[spec.type]
    return StrictCharField(allow_blank=True, max_length=max_length, **options)


# `id` and the built-in fields, in the table's order (DRF lists a base class's declared fields first).
BuiltinContactFields = type(
    "BuiltinContactFields",
    (serializers.Serializer,),
    {"id": serializers.IntegerField(read_only=True), **{spec.name: _schema_field(spec) for spec in CONTACT_FIELDS}},
)


# What a write may set: the writable built-in fields and `custom` (the rest is ignored, as DRF does).
WRITABLE_KEYS = frozenset(spec.name for spec in CONTACT_FIELDS if spec.writable) | {"custom"}


class ContactSerializer(BuiltinContactFields):
    """Read and write shape of a contact: `id`, the built-in fields (contacts.contact_fields) and
    `custom`. Writes are validated as a whole by ContactNormalizer (so API, admin and import agree).
    """

    custom = CustomFieldValuesField(
        required=False,
        allow_null=True,
        help_text="Values keyed by custom-field key; a key not given is left as it is.",
    )

    # Writing null empties a field; an answer holds "", [], false or {} then, never null, except in
    # the columns that store an empty value as NULL (email, phone, assigned_to).
    null_only_in_requests = tuple(spec.name for spec in CONTACT_FIELDS if not spec.nullable) + ("custom",)

    class Meta:
        list_serializer_class = ContactListSerializer  # a page's tags and custom values in two queries

    def run_validation(self, data=serializers.empty):
        # The whole of validation is the normalizer's: no per-field validators or read-only
        # defaults to merge, so the declared fields (a deep copy per request) are not built.
        return self.to_internal_value(data)

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise InvalidInput([FieldError(None, "wrong_type", "Expected a JSON object.")])
        normalizer: ContactNormalizer = self.context["normalizer"]
        writable = {k: v for k, v in data.items() if k in WRITABLE_KEYS}
        values, errors = normalizer.clean(writable, existing=self.instance)
        if errors:
            raise InvalidInput(errors)
        return values

    def to_representation(self, instance):
        body = {"id": instance.id}
        for spec in CONTACT_FIELDS:
            value = getattr(instance, spec.column or spec.name)
            body[spec.name] = iso_utc(value) if spec.type == "datetime" else value
        body["custom"] = instance.custom
        return body


def iso_utc(value) -> str:
    """DRF's DateTimeField output (ISO 8601, UTC as `Z`) without building a field per value."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": r"^-?\d{0,12}(?:\.\d{0,2})?$",
        "example": "1500.00",
        "nullable": True,
    }
)
class MoneyField(StrictDecimalField):
    """An amount: read as a decimal string; written as one or as a JSON number (DESIGN §4)."""

    accepts_json_number = True  # published for requests as string or number (crm/api/schema.py)

    def to_internal_value(self, data):
        if isinstance(data, int | float) and not isinstance(data, bool):
            data = repr(data)  # the shortest text of the number, as the client wrote it
        return super().to_internal_value(data)


class CurrencyField(StrictRegexField):
    """An ISO 4217 code (contacts.currencies), written in any case (`usd` is stored `USD`)."""

    def __init__(self, **kwargs):
        super().__init__(r"^[A-Za-z]{3}$", max_length=3, **kwargs)

    def to_internal_value(self, data):
        try:
            return normalize_currency(super().to_internal_value(data))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid_currency") from None


class OpportunitySerializer(StrictModelSerializer):
    contact = serializers.IntegerField(source="contact_id", help_text="Id of a contact the caller can see.")
    value = MoneyField(
        max_digits=14,
        decimal_places=2,
        required=False,
        allow_null=True,
        help_text="Amount: a decimal string; a JSON number is accepted on write.",
    )
    assigned_to = serializers.IntegerField(
        required=False, allow_null=True, source="assigned_to_id", help_text="User id of a member of the org."
    )
    currency = CurrencyField(
        required=False, help_text="ISO 4217 code, e.g. USD (any case on write; stored in capitals)."
    )

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "contact",
            "name",
            "pipeline",
            "stage",
            "status",
            "value",
            "currency",
            "assigned_to",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_contact(self, contact_id):
        # Resolved only within the caller's scope: another org's or an invisible contact is "not found".
        membership = self.context["membership"]
        if not Contact.objects.for_member(membership).filter(pk=contact_id).exists():
            raise serializers.ValidationError("No such contact.", code="does_not_exist")
        return contact_id

    def validate_assigned_to(self, user_id):
        from orgs.models import Membership

        membership = self.context["membership"]
        if user_id is not None and not Membership.objects.filter(org_id=membership.org_id, user_id=user_id).exists():
            raise serializers.ValidationError("That user is not a member of this organization.", code="not_a_member")
        return user_id
