"""Contact writes: normalized values in, one transaction, 409 on duplicates, and nothing written
that the request did not name, so concurrent writes compose (DESIGN §2):

- an update sets only the columns it was given (plus the ones derived from them, computed from
  the row the caller read FOR UPDATE);
- tags are rows of ContactTag, added and removed one by one (INSERT … ON CONFLICT DO NOTHING,
  DELETE), never a rewritten list;
- custom values are rows of FieldValue, replaced per field key, never a rewritten object.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Now

from contacts.models import Contact, ContactTag, FieldValue
from contacts.normalize import MAX_TAGS_PER_CONTACT
from crm.errors import Conflict, FieldError, InvalidInput
from customization.catalog import ensure_tags
from customization.models import CustomField
from customization.text import fold, text_key
from orgs.models import Membership

EMAIL_CONSTRAINT = "contact_org_email_uniq"


def duplicate_email_conflict(org_id: int, email: str, membership: Membership | None) -> Conflict:
    """409 naming the existing contact only when the caller may see it."""
    existing = Contact.objects.for_org(org_id).filter(email_key=fold(email))
    if membership is not None:
        existing = existing.for_member(membership)
    existing_id = existing.values_list("id", flat=True).first()
    extra = {"existing_id": existing_id} if existing_id is not None else {}
    return Conflict(
        "A contact with this email already exists in this organization.", attr="email", code="duplicate_email", **extra
    )


def _save(contact: Contact, membership: Membership | None, **save_kwargs) -> None:
    try:
        with transaction.atomic():
            contact.save(**save_kwargs)
    except IntegrityError as exc:
        if EMAIL_CONSTRAINT in str(exc) and contact.email:
            raise duplicate_email_conflict(contact.org_id, contact.email, membership) from exc
        raise


@transaction.atomic
def create_contact(
    org_id: int,
    values: dict,
    membership: Membership | None = None,
    fields: Mapping[str, CustomField] = {},
    instance: Contact | None = None,
) -> Contact:
    """`values` from ContactNormalizer.clean; `fields` its custom-field definitions. `instance`: an
    unsaved Contact to save (the admin's), else a new one."""
    values = dict(values)
    tags, custom = values.pop("tags", None), values.pop("custom", None)
    contact = instance if instance is not None else Contact()
    contact.org_id = org_id
    for key, value in values.items():
        setattr(contact, key, value)
    _save(contact, membership)
    if tags:
        add_tags(contact, tags)
    if custom:
        set_custom_values(contact, custom, fields)
    return reload(contact)


@transaction.atomic
def update_contact(
    contact: Contact, values: dict, membership: Membership | None = None, fields: Mapping[str, CustomField] = {}
) -> Contact:
    """`contact` was read FOR UPDATE in the caller's transaction; `values` from ContactNormalizer.clean
    with it as `existing`. Writes the named columns, the tags and the custom keys given, nothing else."""
    values = dict(values)
    tags, custom = values.pop("tags", None), values.pop("custom", None)
    for key, value in values.items():
        setattr(contact, key, value)
    _save(contact, membership, update_fields=[*values, "updated_at"])
    if tags is not None:
        replace_tags(contact, tags)
    if custom:
        set_custom_values(contact, custom, fields)
    # Read FOR UPDATE, then given every changed column (no trigger rewrites a contact's columns):
    # the row as stored, with no second read. Its tags and values are read when shown.
    contact.forget_tags_and_custom()
    return contact


def reload(contact: Contact) -> Contact:
    """The contact as the API shows it, with its tags and custom values."""
    return Contact.objects.for_org(contact.org_id).get(pk=contact.pk)


def touch(contact: Contact) -> None:
    """A change to the contact's tags or custom values is a change to the contact."""
    Contact.objects.filter(org_id=contact.org_id, pk=contact.pk).update(updated_at=Now())
    contact.forget_tags_and_custom()


# --- tags ----------------------------------------------------------------------------------


def add_tags(contact: Contact, names: Iterable[str]) -> None:
    """Add tag names (normalized) that the contact does not have yet; unknown ones join the catalog."""
    ids = ensure_tags(contact.org_id, names)
    ContactTag.objects.bulk_create(
        [tag_row(contact, tag_id) for tag_id in ids.values()],
        ignore_conflicts=True,
    )
    _check_tag_cap(contact)
    contact.forget_tags_and_custom()


def replace_tags(contact: Contact, names: Iterable[str]) -> None:
    """The contact's tags become exactly `names`."""
    ids = ensure_tags(contact.org_id, names)
    links = ContactTag.objects.filter(org_id=contact.org_id, contact_id=contact.pk)
    links.exclude(tag_id__in=list(ids.values())).delete()
    ContactTag.objects.bulk_create([tag_row(contact, tag_id) for tag_id in ids.values()], ignore_conflicts=True)
    _check_tag_cap(contact)
    contact.forget_tags_and_custom()


def tag_row(contact: Contact, tag_id: int) -> ContactTag:
    return ContactTag(org_id=contact.org_id, contact_id=contact.pk, tag_id=tag_id, created_at=contact.created_at)


def remove_tag(contact: Contact, name: str) -> bool:
    """Remove one tag from the contact; False if it did not have it."""
    links = ContactTag.objects.filter(org_id=contact.org_id, contact_id=contact.pk, tag__name=name)
    contact.forget_tags_and_custom()
    return links.delete()[0] > 0


def _check_tag_cap(contact: Contact) -> None:
    if ContactTag.objects.filter(org_id=contact.org_id, contact_id=contact.pk).count() > MAX_TAGS_PER_CONTACT:
        raise InvalidInput([FieldError("tags", "too_many", f"At most {MAX_TAGS_PER_CONTACT} tags per contact.")])


# --- custom values ---------------------------------------------------------------------------


def stored_rows(
    org_id: int, contact_id: int, field: CustomField, canonical: Any, created_at: dt.datetime
) -> list[FieldValue]:
    """The FieldValue rows of one canonical value (one per item: a multi_select option each);
    `created_at` is the contact's."""
    return [
        FieldValue(
            org_id=org_id,
            contact_id=contact_id,
            created_at=created_at,
            field_id=field.pk,
            position=position,
            value=item.value,
            folded=item.text,
            text_key=text_key(item.text) if item.text is not None else None,
            number=item.number,
            day=item.day,
            moment=item.moment,
        )
        for position, item in enumerate(field.field_type.stored_items(canonical))
    ]


def set_custom_values(contact: Contact, patch: Mapping[str, Any], fields: Mapping[str, CustomField]) -> None:
    """Replace the values of the keys in `patch` (canonical JSON forms; None clears). The caller
    holds the contact's row lock, so two writers of one key take turns; other keys are untouched.

    The definitions are read FOR KEY SHARE first, as the foreign keys would, so a concurrent
    deletion of one of these fields either waits for this transaction (and then deletes what it
    wrote) or has happened, and this write is a 409: the two never deadlock.
    """
    if not patch:
        return
    ids = sorted({fields[key].pk for key in patch})
    with connection.cursor() as cursor:  # FOR KEY SHARE: not in the ORM
        cursor.execute(
            f"SELECT id FROM {CustomField._meta.db_table} WHERE org_id = %s AND id = ANY(%s) FOR KEY SHARE",
            [contact.org_id, ids],
        )
        found = len(cursor.fetchall())
    if found != len(ids):
        raise Conflict(
            "A custom field of this request was deleted meanwhile; nothing was changed.", code="field_deleted"
        )
    FieldValue.objects.filter(org_id=contact.org_id, contact_id=contact.pk, field_id__in=ids).delete()
    FieldValue.objects.bulk_create(
        [
            row
            for key, value in patch.items()
            if value is not None
            for row in stored_rows(contact.org_id, contact.pk, fields[key], value, contact.created_at)
        ]
    )
    contact.forget_tags_and_custom()
