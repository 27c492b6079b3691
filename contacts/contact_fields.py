"""The contact's built-in fields, declared once.

Each row says what every part of the product needs to know about one field: the normalizer
(which cleaner, the length cap), the API serializer and the OpenAPI schema (help text, whether
null may be written), the search registry and `GET /contacts/fields` (label, type, sortable),
the import (its CSV header is the name), the admin form, and template rendering
(`{{contact.<name>}}`). Adding a built-in field is one row here plus a migration of the model.

`type` names a field type of `customization.field_types` (its filter kind gives the operators),
or one of the two kinds only a built-in has: `tags` (rows of ContactTag) and `user` (a member).
"""

from __future__ import annotations

from dataclasses import dataclass

from customization.field_types import FIELD_TYPES, FilterKind

# Built-in field types with no entry in the custom-field type registry.
BUILTIN_ONLY_KINDS = {"tags": FilterKind.TAGS, "user": FilterKind.USER}


@dataclass(frozen=True)
class ContactField:
    name: str  # in JSON, CSV headers, search queries and template tokens
    label: str
    type: str  # a FIELD_TYPES name, or "tags" / "user"
    column: str | None = None  # the model attribute; None: not a column of the contact row
    max_length: int | None = None  # text: the normalizer's cap
    writable: bool = True  # clients may write it (API, import, admin)
    sortable: bool = True
    nullable: bool = False  # the column may hold NULL (an empty email or phone is NULL, not "")
    token: bool = False  # `{{contact.<name>}}` renders it
    help_text: str = ""

    @property
    def kind(self) -> str:
        """The filter kind: which operators and value shapes search accepts."""
        return BUILTIN_ONLY_KINDS.get(self.type) or FIELD_TYPES[self.type].filter_kind

    @property
    def empty(self):
        """The stored value of the field left empty."""
        if self.nullable:
            return None
        return False if self.type == "boolean" else ""

    @property
    def is_text(self) -> bool:
        """Free text kept as typed (trimmed, capped) and case-folded into `Contact.folded`."""
        return self.type in ("text", "textarea")


CONTACT_FIELDS: tuple[ContactField, ...] = (
    ContactField("first_name", "First name", "text", "first_name", max_length=100, token=True),
    ContactField("last_name", "Last name", "text", "last_name", max_length=100, token=True),
    ContactField(
        "name",
        "Name",
        "text",
        "name",
        max_length=201,
        token=True,
        help_text="Display name. On write, split into first/last name when those are absent.",
    ),
    ContactField(
        "email",
        "Email",
        "email",
        "email",
        nullable=True,
        token=True,
        help_text="Validated; unique per org, compared case-insensitively.",
    ),
    ContactField(
        "phone",
        "Phone",
        "phone",
        "phone",
        nullable=True,
        token=True,
        help_text="Any format; stored as E.164 using the org's default region.",
    ),
    ContactField("company", "Company", "text", "company", max_length=200, token=True),
    ContactField("source", "Source", "text", "source", max_length=100, token=True),
    ContactField("notes", "Notes", "textarea", "notes", max_length=10000, sortable=False),
    ContactField(
        "tags",
        "Tags",
        "tags",
        sortable=False,
        help_text="Normalized (trimmed, case-folded); unknown names join the tag catalog. Returned in name order.",
    ),
    ContactField("dnc", "Do not contact", "boolean", "dnc"),
    ContactField(
        "assigned_to",
        "Assigned to",
        "user",
        "assigned_to_id",
        nullable=True,
        help_text="User id of a member of the org.",
    ),
    ContactField("created_at", "Created", "datetime", "created_at", writable=False),
    ContactField("updated_at", "Updated", "datetime", "updated_at", writable=False),
)

FIELDS_BY_NAME: dict[str, ContactField] = {f.name: f for f in CONTACT_FIELDS}
WRITABLE_FIELDS: tuple[ContactField, ...] = tuple(f for f in CONTACT_FIELDS if f.writable)
TEXT_FIELDS: tuple[ContactField, ...] = tuple(f for f in CONTACT_FIELDS if f.is_text)
# The model columns a write may set (tags are rows, not a column).
WRITABLE_COLUMNS: tuple[str, ...] = tuple(f.column for f in WRITABLE_FIELDS if f.column)
TOKEN_FIELDS: tuple[str, ...] = tuple(f.name for f in CONTACT_FIELDS if f.token)
