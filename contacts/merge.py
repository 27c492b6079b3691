"""Merging contacts (DESIGN §4 "Nothing is lost"): `POST /contacts/merge` folds up to MAX_FROM
contacts into one survivor, in one transaction; `POST /contacts/merges/{id}/undo` takes it back.

Per field, the winner is the contact `prefer` names; else the survivor's non-empty value; else the
non-empty value of the most recently updated other. The name (first, last, display) moves as one
field, `name`. Tags are the union; custom values are chosen per key like fields; every
opportunity of the merged contacts moves to the survivor; the merged contacts go to the trash
marked `merged_into` (contacts.trash), so `GET` of their ids answers the survivor. The
survivor's new values go through the normalizer and contacts.services like a PATCH.

Every contact involved is locked in id order first: of two merges sharing a contact, the second
waits, then finds it merged (409 `merged_meanwhile`), and nothing is lost or duplicated.

The merge row keeps the survivor's values before and after for the fields the merge set; undo
refuses (409) once any of them changed since, else puts them back, restores the merged contacts
from the trash and moves their opportunities back.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from contacts.contact_fields import WRITABLE_FIELDS
from contacts.models import Contact, ContactMerge, Opportunity, TrashedContact
from contacts.normalize import ContactNormalizer
from contacts.services import update_contact
from contacts.trash import locked_entry, move_to_trash, restore_many
from crm.errors import Conflict, FieldError, InvalidInput, NotFound
from history.context import set_change_source
from orgs.models import Membership

MAX_FROM = 10
NAME_PARTS = ("first_name", "last_name", "name")  # one field in a merge: `name`
# The built-in fields a merge chooses (tags are the union; the name parts move together).
MERGED_FIELDS = tuple(f.name for f in WRITABLE_FIELDS if f.name not in ("tags", "first_name", "last_name"))


def merge(
    normalizer: ContactNormalizer, user_id: int | None, into: int, from_ids: list[int], prefer: dict[str, int]
) -> tuple[Contact, int]:
    """Merge `from_ids` into `into` for the normalizer's member (None: staff, the whole org) as
    user `user_id`; returns the survivor and the merge's id."""
    org_id, membership = normalizer.org.id, normalizer.membership
    _check(into, from_ids, prefer, normalizer)
    with transaction.atomic():
        set_change_source("merge")
        contacts = _lock(normalizer, [into, *from_ids])
        survivor, others = contacts[into], [contacts[i] for i in from_ids]
        before, after = _choose(survivor, others, prefer, normalizer)
        record = ContactMerge.objects.create(
            org_id=org_id, into_id=into, from_ids=from_ids, created_by_id=user_id, before=before
        )
        opportunities = Opportunity.objects.filter(org_id=org_id, contact_id__in=from_ids)
        record.opportunities = {str(o): c for o, c in opportunities.values_list("id", "contact_id")}
        opportunities.update(contact_id=into, updated_at=timezone.now())
        # Trashed before the survivor is written: it may take a merged contact's email.
        move_to_trash(org_id, from_ids, deleted_by=user_id, merged_into=into, merge_id=record.pk)
        survivor = _write(survivor, after, membership, normalizer)
        record.after = _values(survivor, before.keys())
        record.save(update_fields=["opportunities", "after"])
    return survivor, record.pk


def restore_into(membership: Membership, contact_id: int, into: int) -> tuple[Contact, int]:
    """Restore a trashed contact by merging it into a live one (the answer to a restore refused
    because that one took its email meanwhile): it comes back without its email and is merged at
    once, in one transaction. Returns the survivor and the merge's id."""
    with transaction.atomic():
        entry = locked_entry(membership, contact_id)
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TrashedContact._meta.db_table} SET snapshot = jsonb_set(snapshot, '{{contact}}', "
                """snapshot->'contact' || '{"email": null, "email_key": null}') """
                "WHERE org_id = %s AND contact_id = %s",
                [entry.org_id, contact_id],
            )
        restore_many(entry.org_id, [contact_id])
        return merge(ContactNormalizer.for_member(membership), membership.user_id, into, [contact_id], {})


def undo(membership: Membership, merge_id: int) -> Contact:
    """Take a merge back: 409 when it is past TRASH_DAYS, already undone, or the survivor changed
    since in a field the merge set."""
    with transaction.atomic():
        set_change_source("restore")
        record = ContactMerge.objects.for_org(membership.org_id).select_for_update().filter(pk=merge_id).first()
        visible = Contact.objects.for_member(membership)
        if record is None or not visible.filter(pk=record.into_id).exists():
            raise NotFound("No merge with this id (or its survivor is not visible to you).")
        if record.undone_at is not None:
            raise Conflict("This merge was already undone.", code="already_undone")
        if record.created_at < timezone.now() - dt.timedelta(days=settings.TRASH_DAYS):
            raise Conflict(f"A merge can be undone for {settings.TRASH_DAYS} days.", code="undo_expired")
        survivor = visible.select_for_update().get(pk=record.into_id)
        changed = sorted(k for k, v in _values(survivor, record.after.keys()).items() if v != record.after[k])
        if changed:
            raise Conflict(
                f"The survivor changed since the merge in {', '.join(changed)}; nothing was undone.",
                code="changed_since",
                fields=changed,
            )
        normalizer = ContactNormalizer.for_member(membership)
        survivor = _write(survivor, record.before, membership, normalizer)  # frees a merged contact's email
        restored = restore_many(membership.org_id, record.from_ids)
        if len(restored) != len(record.from_ids):
            missing = sorted(set(record.from_ids) - set(restored))
            raise Conflict(
                f"Contacts {missing} can no longer be restored (purged, or their email taken); nothing was undone.",
                code="not_restorable",
            )
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Opportunity._meta.db_table} o SET contact_id = m.contact_id::bigint, updated_at = now() "
                "FROM jsonb_each_text(%s::jsonb) m(id, contact_id) "
                "WHERE o.org_id = %s AND o.id = m.id::bigint AND o.contact_id = %s",
                [json.dumps(record.opportunities), membership.org_id, record.into_id],
            )
        record.undone_at = timezone.now()
        record.save(update_fields=["undone_at"])
    return Contact.objects.for_org(membership.org_id).get(pk=survivor.pk)


def _check(into: int, from_ids: list[int], prefer: dict[str, int], normalizer: ContactNormalizer) -> None:
    errors: list[FieldError] = []
    if into in from_ids:
        errors.append(FieldError("from", "contains_into", "`from` cannot contain the survivor (`into`)."))
    if len(set(from_ids)) != len(from_ids):
        errors.append(FieldError("from", "duplicate_ids", "`from` names a contact twice."))
    involved = {into, *from_ids}
    for key, contact_id in prefer.items():
        builtin = key in MERGED_FIELDS or key in NAME_PARTS
        custom = key.startswith("custom.") and key[len("custom.") :] in normalizer.custom_fields
        if not (builtin or custom):
            errors.append(FieldError(f"prefer.{key}", "unknown_field", f"No field {key!r} to choose."))
        elif contact_id not in involved:
            errors.append(FieldError(f"prefer.{key}", "not_involved", "Name `into` or one of `from`."))
    parts = {prefer[k] for k in NAME_PARTS if k in prefer}
    if len(parts) > 1:
        errors.append(FieldError("prefer.name", "conflicting", "The name parts move together: prefer one contact."))
    if errors:
        raise InvalidInput(errors)


def _visible(model, normalizer: ContactNormalizer):
    """The rows of `model` the normalizer's member may see (staff: the whole org)."""
    rows = model.objects.for_org(normalizer.org.id)
    return rows if normalizer.membership is None else rows.for_member(normalizer.membership)


def _lock(normalizer: ContactNormalizer, ids: list[int]) -> dict[int, Contact]:
    found = {c.pk: c for c in _visible(Contact, normalizer).filter(pk__in=ids).order_by("pk").select_for_update()}
    missing = [i for i in ids if i not in found]
    if missing:
        merged = _visible(TrashedContact, normalizer).filter(contact_id__in=missing).exists()
        if merged:
            raise Conflict(
                f"Contacts {missing} were merged or deleted meanwhile; nothing was merged.", code="merged_meanwhile"
            )
        raise NotFound(f"No contacts {missing} (or not visible to you).")
    return found


def _values(contact: Contact, keys) -> dict[str, Any]:
    """The contact's values in API form for `keys` (built-in names, `tags`, `custom.<key>`)."""
    custom = contact.custom
    out: dict[str, Any] = {}
    for key in keys:
        if key == "tags":
            out[key] = sorted(contact.tags)
        elif key.startswith("custom."):
            out[key] = custom.get(key[len("custom.") :])
        elif key == "assigned_to":
            out[key] = contact.assigned_to_id
        else:
            out[key] = getattr(contact, key)
    return out


def _empty(value) -> bool:
    return value in (None, "", False, [])


def _choose(survivor: Contact, others: list[Contact], prefer: dict[str, int], normalizer) -> tuple[dict, dict]:
    """The survivor's values (`before`) and the merged ones (`after`) of the fields that change."""
    by_id = {c.pk: c for c in [survivor, *others]}
    recent_first = sorted(others, key=lambda c: (c.updated_at, c.pk), reverse=True)
    name_winner = next((prefer[k] for k in NAME_PARTS if k in prefer), None)
    keys = [*(k for k in MERGED_FIELDS if k != "name"), *(f"custom.{k}" for k in normalizer.custom_fields)]
    after: dict[str, Any] = {}
    for key in [*keys, "name"]:
        winner_id = name_winner if key == "name" else prefer.get(key)
        if winner_id is not None:
            winner = by_id[winner_id]
        else:
            value = _values(survivor, [key])[key]
            winner = (
                survivor
                if not _empty(value)
                else next((c for c in recent_first if not _empty(_values(c, [key])[key])), survivor)
            )
        parts = NAME_PARTS if key == "name" else (key,)
        for part in parts:
            mine, theirs = _values(survivor, [part])[part], _values(winner, [part])[part]
            if mine != theirs:
                after[part] = theirs
    tags = sorted({tag for c in by_id.values() for tag in c.tags})
    if tags != sorted(survivor.tags):
        after["tags"] = tags
    return _values(survivor, after.keys()), after


def _write(survivor: Contact, values: dict, membership: Membership, normalizer: ContactNormalizer) -> Contact:
    """Set the survivor's `values` (API form) as a PATCH would."""
    if not values:
        return survivor
    patch = {k: v for k, v in values.items() if not k.startswith("custom.")}
    custom = {k[len("custom.") :]: v for k, v in values.items() if k.startswith("custom.")}
    if custom:
        patch["custom"] = custom
    cleaned, errors = normalizer.clean(patch, existing=survivor)
    if errors:
        raise InvalidInput(errors, "The merged values are not valid for this contact.")
    return update_contact(survivor, cleaned, membership, normalizer.custom_fields)
