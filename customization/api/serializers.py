"""Request and response shapes of the customization API. Validation errors surface as 422 with
the dotted `attr` of the culprit; uniqueness is checked by the services (409)."""

from __future__ import annotations

import re

from django.utils.text import slugify
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.api.serializer_fields import StrictCharField, StrictChoiceField, StrictModelSerializer
from customization.catalog import normalize_tag
from customization.field_types import DATA_TYPES, FIELD_TYPES
from customization.models import KEY_PATTERN, CustomField, CustomFieldFolder, CustomValue, Tag
from customization.rendering import TEMPLATE_MAX_LENGTH
from customization.text import fold

KEY_RE = re.compile(KEY_PATTERN)
KEY_HELP = "Lowercase letters, digits and `_`, starting with a letter, at most 64 characters."
MAX_OPTIONS = 500
OPTION_MAX_LENGTH = 100
CUSTOM_VALUE_MAX_LENGTH = 10_000


def validate_key(value: str) -> str:
    if not KEY_RE.fullmatch(value):
        raise serializers.ValidationError(f"Keys match {KEY_PATTERN}.", code="invalid_key")
    return value


def key_from_name(name: str) -> str:
    """'Lead score (2026)' → 'lead_score_2026': ASCII slug with underscores, starting with a letter."""
    slug = slugify(name).replace("-", "_")
    slug = re.sub(r"^[^a-z]+", "", slug)
    return re.sub(r"_+", "_", slug)[:64].rstrip("_")


class TextValueField(StrictCharField):
    """Text that answers a non-string with `wrong_type` ("Expected a string."), as custom values
    and templates always have."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Expected a string.", code="wrong_type")
        return super().to_internal_value(data)


# A tag name holds something besides white space, and no NUL (customization.catalog.normalize_tag).
TAG_NAME_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 64, "pattern": TAG_NAME_PATTERN})
class TagNameField(StrictCharField):
    """A tag name, normalized like contacts' tags (trimmed, case-folded, inner spaces collapsed)."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text",
            "At most 64 characters, as given and once normalized (trimmed, case-folded, inner whitespace collapsed).",
        )
        super().__init__(trim_whitespace=False, **kwargs)  # normalize_tag checks both lengths

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Expected a string.", code="wrong_type")
        try:
            return normalize_tag(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc), code="invalid_tag")


# --- tags --------------------------------------------------------------------------------


class TagSerializer(StrictModelSerializer):
    name = TagNameField()
    contact_count = serializers.IntegerField(
        required=False, help_text="Only with `?with_counts=true`: contacts (visible to the caller) carrying this tag."
    )

    absent_in_responses = ("contact_count",)  # present with `?with_counts=true` alone

    class Meta:
        model = Tag
        fields = ["id", "name", "created_at", "contact_count"]
        read_only_fields = ["id", "created_at"]

    def to_representation(self, instance):
        data = {
            "id": instance.id,
            "name": instance.name,
            "created_at": serializers.DateTimeField().to_representation(instance.created_at),
        }
        counts = self.context.get("tag_counts")
        if counts is not None:
            data["contact_count"] = counts.get(instance.name, 0)
        return data


class TagWriteSerializer(serializers.Serializer):
    name = TagNameField()


# --- folders -----------------------------------------------------------------------------


class CustomFieldFolderSerializer(StrictModelSerializer):
    position = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, help_text="Sort order; new folders go last when omitted."
    )

    class Meta:
        model = CustomFieldFolder
        fields = ["id", "name", "position", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"name": {"help_text": "Unique per org, ignoring case."}}


# --- custom fields -----------------------------------------------------------------------


class ScopedFolderField(serializers.PrimaryKeyRelatedField):
    """A folder id resolved only among the caller's org folders (another org's id is 'does not exist')."""

    def get_queryset(self):
        return CustomFieldFolder.objects.for_member(self.context["membership"])


class CustomFieldSerializer(StrictModelSerializer):
    key = StrictCharField(
        required=False,
        max_length=64,
        validators=[validate_key],
        help_text=f"{KEY_HELP} Derived from `name` when absent. Unique per org; cannot change after creation.",
    )
    data_type = StrictChoiceField(choices=DATA_TYPES, help_text="Cannot change after creation.")
    folder = ScopedFolderField(required=False, allow_null=True, help_text="Id of a folder of this org, or null.")
    options = serializers.ListField(
        child=StrictCharField(max_length=OPTION_MAX_LENGTH),
        required=False,
        max_length=MAX_OPTIONS,
        help_text="Required, non-empty and unique (ignoring case) for single_select and multi_select; "
        "must be empty for other types. Values no longer in the list stay on contacts until rewritten.",
    )
    position = serializers.IntegerField(
        min_value=0, max_value=2**31 - 1, required=False, help_text="Sort order; new fields go last when omitted."
    )

    class Meta:
        model = CustomField
        fields = ["id", "key", "name", "data_type", "folder", "options", "position"]
        read_only_fields = ["id"]

    def validate(self, attrs):
        errors: dict[str, str] = {}
        instance: CustomField | None = self.instance
        for immutable in ("key", "data_type"):
            if instance is not None and immutable in attrs and attrs[immutable] != getattr(instance, immutable):
                errors[immutable] = serializers.ErrorDetail(
                    f"`{immutable}` cannot change after creation.", code="immutable"
                )
        if instance is None and "key" not in attrs and "name" in attrs:
            derived = key_from_name(attrs["name"])
            if not derived:
                errors["key"] = serializers.ErrorDetail(
                    "Cannot derive a key from this name; give `key` explicitly.", code="required"
                )
            attrs["key"] = derived
        data_type = attrs.get("data_type", getattr(instance, "data_type", None))
        if data_type in FIELD_TYPES and not errors.get("data_type"):
            options_error = self._check_options(data_type, attrs, instance)
            if options_error:
                errors["options"] = options_error
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def _check_options(self, data_type: str, attrs: dict, instance) -> serializers.ErrorDetail | None:
        options = attrs.get("options", getattr(instance, "options", None) or [])
        if not FIELD_TYPES[data_type].has_options:
            if options:
                return serializers.ErrorDetail(f"{data_type} fields take no options.", code="options_not_allowed")
            attrs["options"] = []
            return None
        cleaned = [option.strip() for option in options]
        if not cleaned:
            return serializers.ErrorDetail(f"{data_type} fields need a non-empty list of options.", code="required")
        if any(not option for option in cleaned):
            return serializers.ErrorDetail("Options cannot be blank.", code="blank")
        if len({fold(option) for option in cleaned}) != len(cleaned):
            return serializers.ErrorDetail("Options must be unique, ignoring case.", code="duplicate_option")
        if data_type == "multi_select" and any(sep in option for option in cleaned for sep in ",;"):
            # CSV import writes multi_select values as "a;b" or "a,b"; an option holding a separator
            # could never be imported.
            return serializers.ErrorDetail("multi_select options cannot contain ',' or ';'.", code="invalid_option")
        if "options" in attrs:
            attrs["options"] = cleaned
        return None


# --- custom values -----------------------------------------------------------------------


class CustomValueSerializer(StrictModelSerializer):
    class Meta:
        model = CustomValue
        fields = ["key", "value", "created_at", "updated_at"]
        read_only_fields = fields


class CustomValueWriteSerializer(serializers.Serializer):
    value = TextValueField(
        allow_blank=True,
        trim_whitespace=False,
        max_length=CUSTOM_VALUE_MAX_LENGTH,
        help_text=f"Text, at most {CUSTOM_VALUE_MAX_LENGTH:,} characters.",
    )


# --- templates ---------------------------------------------------------------------------


class RenderRequestSerializer(serializers.Serializer):
    template = TextValueField(
        allow_blank=True,
        trim_whitespace=False,
        max_length=TEMPLATE_MAX_LENGTH,
        help_text="Text with tokens `{{contact.<field>}}` (first_name, last_name, name, email, phone, company, "
        "source), `{{contact.custom.<key>}}`, `{{custom_values.<key>}}`; whitespace inside braces is allowed.",
    )
    contact_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,
        help_text="A contact visible to the caller; contact tokens need it.",
    )


class RenderResponseSerializer(serializers.Serializer):
    rendered = StrictCharField()
    missing = serializers.ListField(
        child=StrictCharField(),
        help_text="Tokens that got no value (rendered as empty), and `contact.`/`custom_values.` tokens "
        "outside the grammar (left verbatim), each once, in order of appearance, without braces.",
    )
