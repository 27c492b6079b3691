"""Contact and opportunity representations. Validation of contact input is delegated to
`contacts.normalize.ContactNormalizer`, the one place shared with import."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contacts.models import Contact, Opportunity, attach_tags_and_custom
from contacts.normalize import TEXT_LIMITS, ContactNormalizer
from crm.errors import InvalidInput


class ContactListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        return super().to_representation(attach_tags_and_custom(list(data)))


class ContactSerializer(serializers.ModelSerializer):
    """Read and write shape of a contact.

    Writes are validated as a whole by ContactNormalizer (so API, admin and import agree);
    the declared fields below exist for the schema and for output.
    """

    name = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=TEXT_LIMITS["name"],
        help_text="Display name. On write, split into first/last name when those are absent.",
    )
    email = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=254,
        help_text="Validated; unique per org, compared case-insensitively.",
    )
    phone = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=40,
        help_text="Any format; stored as E.164 using the org's default region.",
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        allow_null=True,
        help_text="Normalized (trimmed, case-folded); unknown names join the tag catalog. Returned in name order.",
    )
    custom = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="Values keyed by custom-field key, typed by its "
        "definition (see GET /custom-fields). `null` clears a value.",
    )
    assigned_to = serializers.IntegerField(
        required=False, allow_null=True, source="assigned_to_id", help_text="User id of a member of the org."
    )

    class Meta:
        model = Contact
        fields = [
            "id",
            "first_name",
            "last_name",
            "name",
            "email",
            "phone",
            "company",
            "source",
            "notes",
            "tags",
            "dnc",
            "custom",
            "assigned_to",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]
        list_serializer_class = ContactListSerializer  # a page's tags and custom values in two queries
        # Writing null clears a field (stored as "" / false / {} / []), so the schema admits it.
        extra_kwargs = {
            "notes": {"max_length": TEXT_LIMITS["notes"], "allow_null": True},
            **{key: {"allow_null": True} for key in ("first_name", "last_name", "company", "source", "dnc")},
        }

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise InvalidInput([_non_object_error()])
        normalizer: ContactNormalizer = self.context["normalizer"]
        writable = {k: v for k, v in data.items() if k in self.writable_keys()}
        values, errors = normalizer.clean(writable, existing=self.instance)
        if errors:
            raise InvalidInput(errors)
        return values

    def writable_keys(self) -> set[str]:
        return {name for name, f in self.fields.items() if not f.read_only}

    def to_representation(self, instance):
        return {
            "id": instance.id,
            "first_name": instance.first_name,
            "last_name": instance.last_name,
            "name": instance.name,
            "email": instance.email,
            "phone": instance.phone,
            "company": instance.company,
            "source": instance.source,
            "notes": instance.notes,
            "tags": instance.tags,
            "dnc": instance.dnc,
            "custom": instance.custom,
            "assigned_to": instance.assigned_to_id,
            "created_at": iso_utc(instance.created_at),
            "updated_at": iso_utc(instance.updated_at),
        }


def iso_utc(value) -> str:
    """DRF's DateTimeField output (ISO 8601, UTC as `Z`) without building a field per value."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _non_object_error():
    from crm.errors import FieldError

    return FieldError(None, "wrong_type", "Expected a JSON object.")


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": r"^-?\d{0,12}(?:\.\d{0,2})?$",
        "example": "1500.00",
        "nullable": True,
    }
)
class MoneyField(serializers.DecimalField):
    pass


class OpportunitySerializer(serializers.ModelSerializer):
    contact = serializers.IntegerField(source="contact_id", help_text="Id of a contact the caller can see.")
    value = MoneyField(
        max_digits=14, decimal_places=2, required=False, allow_null=True, help_text="Amount as a decimal string."
    )
    assigned_to = serializers.IntegerField(
        required=False, allow_null=True, source="assigned_to_id", help_text="User id of a member of the org."
    )
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False, max_length=3, help_text="ISO 4217 code, e.g. USD.")

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
