"""Test helpers: contacts stored exactly as the write path stores them, without going through HTTP.

`make_contact(org, name="Ada", tags=["vip"], custom={"plan": "Pro"}, created_at=...)` sets the
model columns given, computes the derived ones the caller did not give (email_key, folded,
search_text), and stores tags and custom values as their rows (custom keys must be fields of
the org). `make_contacts(org, [{...}, ...])` does the same for many, in bulk.
"""

from __future__ import annotations

from collections.abc import Iterable

from contacts.models import Contact, ContactTag, FieldValue
from contacts.normalize import TEXT_FIELD_NAMES, build_folded, build_search_text, email_key
from contacts.services import stored_rows, tag_row
from customization.catalog import custom_fields_by_key, ensure_tags


def _org_id(org) -> int:
    return org if isinstance(org, int) else org.id


def _pop_org(org, columns: dict):
    """`org` may come as `org=` (instance or id) or `org_id=`, as in Contact(...)."""
    if org is None:
        org = columns.pop("org_id")
    return _org_id(org)


def build_contact(org=None, **columns) -> Contact:
    """An unsaved contact with its derived columns filled in (those given win)."""
    contact = Contact(org_id=_pop_org(org, columns), **columns)
    if "email_key" not in columns:
        contact.email_key = email_key(contact.email)
    if "folded" not in columns:
        contact.folded = build_folded({key: getattr(contact, key) for key in TEXT_FIELD_NAMES})
    if "search_text" not in columns:
        contact.search_text = build_search_text(contact.name, contact.email, contact.phone, contact.company)
    return contact


def make_contacts(org, rows: Iterable[dict]) -> list[Contact]:
    org_id = _org_id(org)
    rows = [{k: v for k, v in row.items() if k not in ("org", "org_id")} for row in rows]
    extras = [(row.pop("tags", None) or [], row.pop("custom", None) or {}) for row in rows]
    contacts = Contact.objects.bulk_create([build_contact(org_id, **row) for row in rows])
    tag_ids = ensure_tags(org_id, {name for tags, _ in extras for name in tags})
    fields = custom_fields_by_key(org_id) if any(custom for _, custom in extras) else {}
    ContactTag.objects.bulk_create(
        tag_row(contact, tag_ids[name])
        for contact, (tags, _) in zip(contacts, extras, strict=True)
        for name in dict.fromkeys(tags)
    )
    FieldValue.objects.bulk_create(
        row
        for contact, (_, custom) in zip(contacts, extras, strict=True)
        for key, value in custom.items()
        if value is not None
        for row in stored_rows(org_id, contact.pk, fields[key], value, contact.created_at)
    )
    return contacts


def make_contact(org=None, **columns) -> Contact:
    (contact,) = make_contacts(_pop_org(org, columns), [columns])
    return Contact.objects.get(pk=contact.pk)  # `tags` and `custom` read the rows afresh
