"""Org catalogs: tags, custom-field folders and definitions, and the custom-value token store.

Invariants: every row carries `org_id`; every unique constraint starts with it.
This app knows nothing of contacts. Contacts refer to tags and fields by id, with foreign keys
ON DELETE CASCADE, so renaming a tag or deleting a tag or field is one row here.
Case-insensitive names are compared by their folding (customization.text.fold), never by SQL.
"""

from __future__ import annotations

from django.db import models

from customization.field_types import DATA_TYPES, FIELD_TYPES
from customization.text import fold
from orgs.models import TenantModel

KEY_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
TAG_MAX_LENGTH = 64


class Tag(TenantModel):
    """A catalog tag. `name` is stored normalized (trimmed, case-folded: catalog.normalize_tag),
    unique per org."""

    name = models.CharField(max_length=TAG_MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["org", "name"], name="tag_org_name_uniq"),
            models.UniqueConstraint(fields=["org", "id"], name="tag_org_id_uniq"),  # target of (org_id, tag_id) keys
        ]

    def __str__(self) -> str:
        return self.name


class CustomFieldFolder(TenantModel):
    """A named group of custom fields, for forms. Deleting it leaves its fields unfiled."""

    name = models.CharField(max_length=100)
    name_key = models.CharField(max_length=400, editable=False)  # fold(name): names are unique ignoring case
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["org", "name_key"], name="folder_org_name_uniq")]

    def save(self, *args, **kwargs):
        self.name_key = fold(self.name)
        if kwargs.get("update_fields") is not None and "name" in kwargs["update_fields"]:
            kwargs["update_fields"] = {*kwargs["update_fields"], "name_key"}
        super().save(*args, **kwargs)

    def __str__(self) -> str:
        return self.name


class CustomField(TenantModel):
    """A typed custom field. Its values are rows of contacts' `FieldValue`, canonicalized by its type.

    Invariants: `key` matches KEY_PATTERN, is unique per org, and neither `key` nor
    `data_type` changes after creation; select types have a non-empty list of options.
    """

    key = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    data_type = models.CharField(max_length=20, choices=[(t, t) for t in DATA_TYPES])
    folder = models.ForeignKey(
        CustomFieldFolder, null=True, blank=True, on_delete=models.SET_NULL, related_name="fields"
    )
    options = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "key"], name="customfield_org_key_uniq"),
            models.UniqueConstraint(
                fields=["org", "id"], name="customfield_org_id_uniq"
            ),  # target of (org_id, field_id)
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key}: {self.data_type})"

    @property
    def field_type(self):
        return FIELD_TYPES[self.data_type]


class CustomValue(TenantModel):
    """An org-wide token value, rendered into templates as `{{custom_values.<key>}}`."""

    key = models.CharField(max_length=64)
    value = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["org", "key"], name="customvalue_org_key_uniq")]

    def __str__(self) -> str:
        return self.key
