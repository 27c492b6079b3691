"""The body part that names a smart list (contacts.smart_list), shared by export and bulk actions."""

from __future__ import annotations

from rest_framework import serializers

from contacts.smart_list import MAX_IDS
from crm.api.serializer_fields import ClosedSerializer, StrictCharField
from crm.limits import MAX_Q_LENGTH, MAX_ROW_ID


class SmartListRequestSerializer(ClosedSerializer):
    query = serializers.JSONField(
        required=False, help_text="A smart-list filter, as in `POST /contacts/search` (docs/filters.md)."
    )
    view = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ROW_ID, help_text="A saved view's id: its filter and `q`."
    )
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ROW_ID),
        required=False,
        max_length=MAX_IDS,
        help_text=f"These contacts (at most {MAX_IDS:,}).",
    )
    q = StrictCharField(required=False, allow_blank=True, max_length=MAX_Q_LENGTH, help_text="Free text, AND-ed.")
