"""The contact columns an import reads and writes (from contacts/contact_fields.py), and the
layouts of the staging tables its chunks are COPYed into."""

from __future__ import annotations

from typing import Any

from contacts.contact_fields import WRITABLE_FIELDS

# Contact columns the engine writes, in staging-table order, with their types and defaults.
SQL_TYPES = {"text": "text", "textarea": "text", "email": "text", "phone": "text", "boolean": "bool", "user": "int8"}
COLUMN_SPEC: dict[str, tuple[str, Any]] = {
    **{spec.column: (SQL_TYPES[spec.type], spec.empty) for spec in WRITABLE_FIELDS if spec.column},
    # Derived by the normalizer.
    "email_key": ("text", None),
    "folded": ("jsonb", {}),
    "search_text": ("text", ""),
}
COLUMNS = tuple(COLUMN_SPEC)
COLUMN_TYPES = tuple(kind for kind, _ in COLUMN_SPEC.values())
DEFAULTS: dict[str, Any] = {column: default for column, (_, default) in COLUMN_SPEC.items()}
# The rows a chunk writes, as COPYed into contacts (new contacts) or the staging table (updates).
WRITE_COLUMNS = ("id", "org_id", *COLUMNS, "created_at", "updated_at")
WRITE_TYPES = ("int8", "int8", *COLUMN_TYPES, "timestamptz", "timestamptz")
STAGING = "contact_import_staging"
# A chunk's tags and custom values, staged the same way.
# `created_at` of tag and value rows is their contact's (contacts.models.ContactTag).
TAG_STAGING = "contact_import_tags"
TAG_COLUMNS, TAG_TYPES = ("contact_id", "tag_id", "created_at"), ("int8", "int8", "timestamptz")
VALUE_STAGING = "contact_import_values"
VALUE_COLUMNS = (
    "contact_id", "field_id", "position", "value", "folded", "text_key", "number", "day", "moment", "created_at",
)  # fmt: skip
VALUE_TYPES = ("int8", "int8", "int2", "jsonb", "text", "text", "float8", "date", "timestamptz", "timestamptz")
# The org id in the engine's look-ups and updates, as a one-row subquery rather than a constant,
# so the org's own statistics cannot steer them: for an org that was empty at the last ANALYZE
# (a new org's first import) they say zero rows, and the planner then reads the whole org through
# some other org_id index for every chunk, where the unique (org_id, email_key) index and the
# primary key find each row (measured with the first wave's per-org indexes: upserts 4,977 →
# 8,418 rows/s).
ORG_PARAM = "(SELECT %s::bigint)"
