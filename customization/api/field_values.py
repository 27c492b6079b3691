"""A contact's custom-field values in the API: `{"<key>": value}`, each value typed by its field's
data_type (customization.field_types).

Published as one named map, `CustomFieldValues` in answers and `CustomFieldValuesRequest` in bodies
(where null clears a key), so a generated client has one typed class for every `custom`, whichever
body or answer it sits in, instead of an anonymous object per parent.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers

from customization.field_types import FIELD_TYPES

# Every JSON type a canonical value can take, from the field-type registry (strings of several
# formats collapse into one `string`, so `anyOf` stays unambiguous).
FIELD_VALUE_SCHEMAS: list[dict] = list(
    {
        t.json_schema["type"]: {k: v for k, v in t.json_schema.items() if k != "format"} for t in FIELD_TYPES.values()
    }.values()
)


class CustomFieldValuesField(serializers.DictField):
    """`custom`: values keyed by custom-field key (validated by ContactNormalizer, not here)."""


class CustomFieldValuesFieldExtension(OpenApiSerializerFieldExtension):
    target_class = CustomFieldValuesField

    def map_serializer_field(self, auto_schema, direction):
        name = "CustomFieldValuesRequest" if direction == "request" else "CustomFieldValues"
        value = {"anyOf": FIELD_VALUE_SCHEMAS}
        if direction == "request":
            value["nullable"] = True
        schema = {
            "type": "object",
            "additionalProperties": value,
            "description": "Custom-field values keyed by the field's `key`, each typed by its `data_type` "
            "(see GET /custom-fields): text, email, phone, url, single_select and dates (`YYYY-MM-DD`, ISO 8601) "
            "as strings, numbers, booleans, multi_select as a list of options."
            + (" `null` clears a value." if direction == "request" else ""),
        }
        component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
        auto_schema.registry.register_on_missing(component)
        return component.ref
