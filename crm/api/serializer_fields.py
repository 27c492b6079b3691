"""JSON types are checked, not coerced: a string field refuses numbers (found by Schemathesis).

DRF's CharField turns `0` into `"0"` and its DecimalField accepts JSON numbers, so a request the
schema calls invalid (`{"name": 0}`) was accepted. Every serializer of the project declares these
fields instead, and model serializers derive from `StrictModelSerializer`, whose
`serializer_field_mapping` (DRF's documented hook) gives model fields the same classes;
crm/tests/test_serializer_fields.py fails for a serializer that uses DRF's own.
"""

from __future__ import annotations

from django.db import models
from rest_framework import serializers

from crm.errors import FieldError, InvalidInput, unknown_key


class StringOnly:
    """For DRF's text fields (CharField and its subclasses): anything but a JSON string is
    refused with DRF's own `invalid` error ("Not a valid string.")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictCharField(StringOnly, serializers.CharField):
    pass


class StrictEmailField(StringOnly, serializers.EmailField):
    pass


class StrictRegexField(StringOnly, serializers.RegexField):
    pass


class StrictSlugField(StringOnly, serializers.SlugField):
    pass


class StrictURLField(StringOnly, serializers.URLField):
    pass


class StrictChoiceField(serializers.ChoiceField):
    """DRF's ChoiceField whose refusal lists the valid choices (`"dropdown" is not a valid choice.
    Expected one of: text, textarea, …`), so a client can correct itself from the answer alone."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError:
            choices = ", ".join(self.choice_strings_to_values)
            message = f'"{str(data)[:100]}" is not a valid choice. Expected one of: {choices}.'
            raise serializers.ValidationError(message, code="invalid_choice") from None


class StrictDecimalField(serializers.DecimalField):
    """Decimals are published as strings (`"1500.00"`): exact, no float rounding. A JSON number
    is refused unless the field is declared with `coerce_to_string=False`."""

    def to_internal_value(self, data):
        if getattr(self, "coerce_to_string", None) is not False and not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# A ModelSerializer whose fields built from the model are the strict ones above (a comment, not a
# docstring: drf-spectacular would publish it as every subclass's description).
class StrictModelSerializer(serializers.ModelSerializer):
    serializer_choice_field = StrictChoiceField
    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.EmailField: StrictEmailField,
        models.SlugField: StrictSlugField,
        models.URLField: StrictURLField,
        models.DecimalField: StrictDecimalField,
    }


# A request body that is a JSON object with only the serializer's keys: anything else is a 422
# (`wrong_type`, or `unknown_key` per extra key) before the fields are validated, and the schema
# says `additionalProperties: false` (crm.api.schema reads `closed`). A comment, not a docstring,
# for the same reason as above.
class ClosedSerializer(serializers.Serializer):
    closed = True

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise InvalidInput([FieldError(None, "wrong_type", "Expected a JSON object.")])
        unknown = [key for key in data if key not in self.fields]
        if unknown:
            raise InvalidInput([unknown_key(key) for key in unknown])
        return super().to_internal_value(data)
