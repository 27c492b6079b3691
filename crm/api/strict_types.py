"""JSON types are checked, not coerced: a string field refuses numbers (found by Schemathesis).

DRF's CharField turns `0` into `"0"` and DecimalField accepts JSON numbers, so a request the schema
calls invalid (`{"name": 0}`) was accepted. Installed once from CrmConfig.ready() for every serializer.
"""

from rest_framework import serializers

_char_to_internal = serializers.CharField.to_internal_value
_decimal_to_internal = serializers.DecimalField.to_internal_value


def _strict_char(self, data):
    if not isinstance(data, str):
        self.fail("invalid")
    return _char_to_internal(self, data)


def _strict_decimal(self, data):
    # Decimals are published as strings (`"1500.00"`): exact, no float rounding.
    if getattr(self, "coerce_to_string", None) is not False and not isinstance(data, str):
        self.fail("invalid")
    return _decimal_to_internal(self, data)


def install() -> None:
    serializers.CharField.to_internal_value = _strict_char
    serializers.DecimalField.to_internal_value = _strict_decimal
