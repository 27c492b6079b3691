"""The trash (DESIGN §4 "Nothing is lost"): a deleted contact leaves the contacts table whole and
waits in `TrashedContact` until it is restored or purged.

Why a table of its own and not a `deleted_at` column: every read path (lists, search, counts,
estimates, exports, import matching, tag counts, email uniqueness) and every index of the hot
contacts table stays as it is, with nothing to forget; a trashed contact cannot leak into any of
them. The trash row keeps the contact's columns, its tag ids, its custom value rows and its
opportunities as JSON (`snapshot`), written and read back set-based by `jsonb_populate_record`,
so a restore puts back the same rows under the same ids.

Moving is set-based (many contacts per statement: a bulk action's chunk, a merge), and locks the
contacts first, so two concurrent deletes of one contact trash it once.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from contacts.models import Contact, ContactTag, FieldValue, Opportunity, TrashedContact
from contacts.services import duplicate_email_conflict
from crm.errors import Conflict, NotFound
from customization.models import CustomField, Tag
from history.context import record_purged, set_change_source
from orgs.models import Membership

CONTACTS, TAGS, VALUES = Contact._meta.db_table, ContactTag._meta.db_table, FieldValue._meta.db_table
OPPORTUNITIES, TRASH = Opportunity._meta.db_table, TrashedContact._meta.db_table
USERS = get_user_model()._meta.db_table
PURGE_BATCH = 5_000

# The snapshot of contact `c`: everything a restore puts back.
SNAPSHOT = f"""jsonb_build_object(
    'contact', to_jsonb(c),
    'tags', coalesce((SELECT jsonb_agg(t.tag_id ORDER BY t.tag_id) FROM {TAGS} t
                      WHERE t.org_id = c.org_id AND t.contact_id = c.id), '[]'::jsonb),
    'values', coalesce((SELECT jsonb_agg(to_jsonb(v)) FROM {VALUES} v
                        WHERE v.org_id = c.org_id AND v.contact_id = c.id), '[]'::jsonb),
    'opportunities', coalesce((SELECT jsonb_agg(to_jsonb(o)) FROM {OPPORTUNITIES} o
                               WHERE o.org_id = c.org_id AND o.contact_id = c.id), '[]'::jsonb))"""


def move_to_trash(
    org_id: int,
    ids: list[int],
    *,
    deleted_by: int | None,
    job_id: int | None = None,
    merged_into: int | None = None,
    merge_id: int | None = None,
) -> list[int]:
    """Move the contacts `ids` of the org to the trash; returns the ids moved (those that still
    existed). The caller has checked the caller's scope."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {CONTACTS} WHERE org_id = %s AND id = ANY(%s) ORDER BY id FOR UPDATE", [org_id, ids]
        )
        locked = [row[0] for row in cursor.fetchall()]
        if not locked:
            return []
        cursor.execute(
            f"INSERT INTO {TRASH} (org_id, contact_id, name, email, assigned_to_id, deleted_at, deleted_by_id, "
            "job_id, merged_into, merge_id, snapshot) "
            f"SELECT c.org_id, c.id, c.name, c.email, c.assigned_to_id, now(), %(user)s, %(job)s, %(into)s, "
            f"%(merge)s, {SNAPSHOT} FROM {CONTACTS} c WHERE c.org_id = %(org)s AND c.id = ANY(%(ids)s)",
            {"org": org_id, "ids": locked, "user": deleted_by, "job": job_id, "into": merged_into, "merge": merge_id},
        )
        # Tags and custom values go with the contact (foreign keys ON DELETE CASCADE).
        cursor.execute(f"DELETE FROM {OPPORTUNITIES} WHERE org_id = %s AND contact_id = ANY(%s)", [org_id, locked])
        cursor.execute(f"DELETE FROM {CONTACTS} WHERE org_id = %s AND id = ANY(%s)", [org_id, locked])
    return locked


def trashed(membership: Membership):
    """The caller's view of the org's trash, newest first."""
    return TrashedContact.objects.for_member(membership).order_by("-deleted_at", "-contact_id")


def survivor_of(membership: Membership, contact_id: int) -> int | None:
    """The live contact a merged contact went into (following merges of merges), if visible."""
    seen = {contact_id}
    while True:
        into = trashed(membership).filter(contact_id=contact_id).values_list("merged_into", flat=True).first()
        if into is None or into in seen:
            return None
        if Contact.objects.for_member(membership).filter(pk=into).exists():
            return into
        seen.add(contact_id := into)


def _columns(model, **replaced: str) -> tuple[str, str]:
    """The model's columns, and the expressions selecting them from the record `r`."""
    columns = [f.column for f in model._meta.concrete_fields if f.column]
    return ", ".join(columns), ", ".join(replaced.get(c, f"r.{c}") for c in columns)


# A user deleted since the contact went to the trash is no longer its owner (ON DELETE SET NULL).
_LIVE_USER = f"(SELECT u.id FROM {USERS} u WHERE u.id = r.assigned_to_id)"


def locked_entry(membership: Membership, contact_id: int) -> TrashedContact:
    """The caller's trashed contact, locked for a restore: 409 for a live contact, else 404."""
    entry = trashed(membership).select_for_update().filter(contact_id=contact_id).first()
    if entry is None:
        if Contact.objects.for_member(membership).filter(pk=contact_id).exists():
            raise Conflict("This contact is not in the trash: it is live.", code="not_in_trash")
        raise NotFound("No contact with this id in the trash.")
    return entry


@transaction.atomic
def restore(membership: Membership, contact_id: int) -> Contact:
    """Put a trashed contact back whole, under its id. 409 with `existing_id` when a live contact
    has taken its email meanwhile (nothing is changed then)."""
    entry = locked_entry(membership, contact_id)
    email = entry.snapshot["contact"].get("email")
    if not restore_many(entry.org_id, [contact_id]):
        conflict = duplicate_email_conflict(entry.org_id, email, membership)
        conflict.detail = (
            "A live contact has taken this contact's email since it was deleted: restore it merged into "
            'that one (`{"merge_into": <existing_id>}`), or change that contact\'s email first.'
        )
        raise conflict
    return Contact.objects.for_org(entry.org_id).get(pk=contact_id)


def restore_many(org_id: int, ids: list[int]) -> list[int]:
    """Put trashed contacts back whole, under their ids, set-based: their columns, the tags and
    custom fields that still exist (the org deleted the others), their opportunities. Those whose
    email a live contact has taken meanwhile stay in the trash. Returns the ids restored."""
    contact_columns, contact_values = _columns(Contact, assigned_to_id=_LIVE_USER, updated_at="now()")
    opportunity_columns, opportunity_values = _columns(Opportunity, assigned_to_id=_LIVE_USER)
    value_columns, value_values = _columns(FieldValue)
    params = {"org": org_id, "ids": ids}
    set_change_source("restore")  # the history records these rows as restored, not created
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT contact_id FROM {TRASH} WHERE org_id = %(org)s AND contact_id = ANY(%(ids)s) "
            "ORDER BY contact_id FOR UPDATE",
            params,
        )
        locked = [row[0] for row in cursor.fetchall()]
        if not locked:
            return []
        params["ids"] = locked
        cursor.execute(
            f"INSERT INTO {CONTACTS} ({contact_columns}) SELECT {contact_values} "
            f"FROM {TRASH} t CROSS JOIN LATERAL jsonb_populate_record(NULL::{CONTACTS}, t.snapshot->'contact') r "
            "WHERE t.org_id = %(org)s AND t.contact_id = ANY(%(ids)s) "
            f"AND (r.email_key IS NULL OR NOT EXISTS (SELECT FROM {CONTACTS} live "
            "WHERE live.org_id = %(org)s AND live.email_key = r.email_key)) "
            "ON CONFLICT DO NOTHING RETURNING id",
            params,
        )
        params["ids"] = restored = sorted(row[0] for row in cursor.fetchall())
        if not restored:
            return []
        cursor.execute(
            f"INSERT INTO {TAGS} (org_id, contact_id, tag_id, created_at) "
            f"SELECT t.org_id, t.contact_id, tag.id, (t.snapshot->'contact'->>'created_at')::timestamptz "
            f"FROM {TRASH} t CROSS JOIN LATERAL jsonb_array_elements_text(t.snapshot->'tags') x(tag_id) "
            f"JOIN {Tag._meta.db_table} tag ON tag.org_id = t.org_id AND tag.id = x.tag_id::bigint "
            "WHERE t.org_id = %(org)s AND t.contact_id = ANY(%(ids)s)",
            params,
        )
        cursor.execute(
            f"INSERT INTO {VALUES} ({value_columns}) SELECT {value_values} FROM {TRASH} t "
            f"CROSS JOIN LATERAL jsonb_populate_recordset(NULL::{VALUES}, t.snapshot->'values') r "
            f"WHERE t.org_id = %(org)s AND t.contact_id = ANY(%(ids)s) AND r.field_id IN "
            f"(SELECT f.id FROM {CustomField._meta.db_table} f WHERE f.org_id = %(org)s)",
            params,
        )
        cursor.execute(
            f"INSERT INTO {OPPORTUNITIES} ({opportunity_columns}) SELECT {opportunity_values} FROM {TRASH} t "
            f"CROSS JOIN LATERAL jsonb_populate_recordset(NULL::{OPPORTUNITIES}, t.snapshot->'opportunities') r "
            "WHERE t.org_id = %(org)s AND t.contact_id = ANY(%(ids)s)",
            params,
        )
        cursor.execute(f"DELETE FROM {TRASH} WHERE org_id = %(org)s AND contact_id = ANY(%(ids)s)", params)
    return restored


def purge(membership: Membership, contact_id: int) -> None:
    """Delete a trashed contact for good (owner/admin: the view checks); its history says so."""
    if not trashed(membership).filter(contact_id=contact_id).delete()[0]:
        raise NotFound("No contact with this id in the trash.")
    record_purged([(membership.org_id, contact_id)])


def purge_expired(now: dt.datetime | None = None) -> int:
    """Every org's contacts trashed more than TRASH_DAYS ago, deleted in batches (a scheduled
    task, as the bypass role). Returns how many."""
    before = (now or timezone.now()) - dt.timedelta(days=settings.TRASH_DAYS)
    purged = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {TRASH} WHERE (org_id, contact_id) IN (SELECT org_id, contact_id FROM {TRASH} "
                "WHERE deleted_at < %s LIMIT %s) RETURNING org_id, contact_id",
                [before, PURGE_BATCH],
            )
            batch = cursor.fetchall()
        record_purged(batch)
        purged += len(batch)
        if len(batch) < PURGE_BATCH:
            return purged
