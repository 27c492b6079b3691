"""The one field registry of the smart-list search: every filterable/sortable field of an org.

Built-in contact fields come from their table (contacts.contact_fields); each of the org's custom fields becomes
`custom.<key>`, typed by `customization.field_types` (its filter kind gives the operators); the
pseudo-field `view` filters on membership of the org's saved views.
The compiler, saved-view validation, `GET /contacts/fields` and the docs all read from it,
so a custom key reaches SQL only after it matched one of the org's definitions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from contacts.contact_fields import CONTACT_FIELDS
from customization.catalog import custom_fields_by_key
from customization.field_types import FIELD_TYPES, OPERATORS_BY_KIND, FilterKind

CUSTOM_PREFIX = "custom."
MAX_FIELD_NAME = 100


@dataclass(frozen=True)
class SearchField:
    """A filterable field. Exactly one of `column` (built-in) and `custom_key` is set; a custom field
    also carries its definition's id, which is what its stored values refer to."""

    name: str
    label: str
    kind: str  # a FilterKind: decides the operators and value shapes
    type: str  # what the catalog shows: the custom data_type, or the built-in's own type
    sortable: bool = True
    column: str | None = None
    custom_key: str | None = None
    custom_field_id: int | None = None
    nullable: bool = False  # built-ins only: the column may hold NULL (custom values may always be absent)
    options: tuple[str, ...] | None = None

    @property
    def operators(self) -> tuple[str, ...]:
        return OPERATORS_BY_KIND[self.kind]

    @property
    def is_custom(self) -> bool:
        return self.custom_key is not None

    @property
    def data_type(self) -> str | None:
        return self.type if self.is_custom else None


BUILTIN_FIELDS: dict[str, SearchField] = {
    spec.name: SearchField(
        name=spec.name,
        label=spec.label,
        kind=spec.kind,
        type=spec.type,
        sortable=spec.sortable,
        column=spec.column or spec.name,
        nullable=spec.nullable,
    )
    for spec in CONTACT_FIELDS
}

# Filterable, but not a value of the contact: never a column, an export field or a sort key.
PSEUDO_FIELDS: dict[str, SearchField] = {
    "view": SearchField(name="view", label="Saved view", kind=FilterKind.VIEW, type="view", sortable=False),
}

# Custom types that cannot be ordered meaningfully.
UNSORTABLE_DATA_TYPES = frozenset({"multi_select", "textarea"})


@dataclass
class FieldRegistry:
    """The fields of one org: built-ins plus `custom.<key>` per custom-field definition."""

    custom: dict[str, SearchField] = field(default_factory=dict)

    @classmethod
    def for_org(cls, org_id: int) -> FieldRegistry:
        """One query: the org's custom-field definitions."""
        return cls.from_definitions(custom_fields_by_key(org_id).values())

    @classmethod
    def from_definitions(cls, definitions) -> FieldRegistry:
        custom = {}
        for definition in definitions:
            field_type = FIELD_TYPES.get(definition.data_type)
            if field_type is None:  # a data type this build does not know: not filterable
                continue
            name = CUSTOM_PREFIX + definition.key
            custom[name] = SearchField(
                name=name,
                label=definition.name,
                kind=field_type.filter_kind,
                type=definition.data_type,
                sortable=definition.data_type not in UNSORTABLE_DATA_TYPES,
                custom_key=definition.key,
                custom_field_id=definition.pk,
                options=tuple(definition.options or ()) if field_type.has_options else None,
            )
        return cls(custom)

    def get(self, name) -> SearchField | None:
        if not isinstance(name, str):
            return None
        return BUILTIN_FIELDS.get(name) or PSEUDO_FIELDS.get(name) or self.custom.get(name)

    def all(self) -> list[SearchField]:
        """The contact's fields, built-in and custom (what can be displayed and exported)."""
        return [*BUILTIN_FIELDS.values(), *self.custom.values()]

    def catalog(self) -> list[dict]:
        """`GET /contacts/fields`: what a filter UI needs per field."""
        out = []
        for f in [*self.all(), *PSEUDO_FIELDS.values()]:
            entry = {
                "field": f.name,
                "label": f.label,
                "type": f.type,
                "kind": f.kind,
                "operators": list(f.operators),
                "sortable": f.sortable,
            }
            if f.options is not None:
                entry["options"] = list(f.options)
            out.append(entry)
        return out
