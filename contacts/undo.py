"""Undoing an async import or a bulk action (`POST /jobs/{id}/undo`, DESIGN §4 Import, Actions on
a smart list): its journal (contacts.journal) read back in
steps, each committed with the undo job's progress (a killed worker resumes, nothing is undone
twice: each entry is marked `undone` in the step that undid it).

Per contact, its state now is compared with the state the import left (`after`):
- created by the import and unchanged since (`updated_at` not after the import's end): moved to
  the trash (restorable, like any delete);
  changed since: kept, and reported;
- updated: each built-in field and each custom field the job changed is put back unless it
  changed since (then reported, not overwritten); tags the job added are removed if still there,
  tags it removed are added back unless someone added them since or the tag is gone.
"""

from __future__ import annotations

import json

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from contacts.importing.write import lock_org
from contacts.journal import FIELD_COLUMNS, JOURNAL, ORG, state_of
from contacts.models import Contact, ContactJournal, ContactTag, FieldValue, TrashedContact
from contacts.normalize import build_folded, build_search_text, email_key
from contacts.services import tag_row
from contacts.trash import move_to_trash, restore_many
from customization.models import CustomField, Tag
from jobs.models import Job
from jobs.runner import step

STEP_CONTACTS = 500
MAX_REPORTED_KEPT = 1000


def undo(job: Job, undo_job: Job) -> None:
    if job.params.get("action", {}).get("name") == "trash":
        return _undo_trash(job, undo_job)
    entries = ContactJournal.objects.filter(org_id=job.org_id, job_id=job.pk, undone=False)
    if undo_job.progress_total is None:
        with step(undo_job):
            undo_job.progress_total = entries.count()
            undo_job.result = {"removed": 0, "restored": 0, "kept": 0, "unchanged": 0, "kept_fields": []}
    while True:
        with step(undo_job):
            lock_org(job.org_id)  # imports of the org wait; so does a second undo
            undone = _undo_step(job, undo_job)
            undo_job.progress_done += undone
        if undone < STEP_CONTACTS:
            break


def _undo_trash(job: Job, undo_job: Job) -> None:
    """A bulk `trash`: the contacts it trashed that are still in the trash come back whole, in
    steps by contact id (`position`); one whose email a live contact has taken meanwhile stays
    there, reported."""
    in_trash = TrashedContact.objects.filter(org_id=job.org_id, job_id=job.pk)
    if undo_job.progress_total is None:
        with step(undo_job):
            undo_job.progress_total = in_trash.count()
            undo_job.position = 0
            undo_job.result = {"restored": 0, "kept": 0, "kept_fields": []}
    while True:
        with step(undo_job):
            lock_org(job.org_id)
            ids = list(
                in_trash.filter(contact_id__gt=undo_job.position)
                .order_by("contact_id")
                .values_list("contact_id", flat=True)[:STEP_CONTACTS]
            )
            restored = set(restore_many(job.org_id, ids))
            undoer = ContactUndo(job.org_id, undo_job)
            for contact_id in ids:
                if contact_id not in restored:
                    undoer.result["kept"] += 1
                    undoer.keep(contact_id, "email", "A live contact has taken its email since: left in the trash.")
            undo_job.result["restored"] += len(restored)
            undo_job.progress_done += len(ids)
            undo_job.position = ids[-1] if ids else undo_job.position
        if len(ids) < STEP_CONTACTS:
            break


def _undo_step(job: Job, undo_job: Job) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT j.contact_id, j.created, j.before, j.after, "
            f"CASE WHEN j.created THEN NULL ELSE ({state_of('j.contact_id')}) END, "
            f"(SELECT c.updated_at FROM {Contact._meta.db_table} c WHERE c.org_id = {ORG} AND c.id = j.contact_id) "
            f"FROM {JOURNAL} j "
            "WHERE j.org_id = %(org)s AND j.job_id = %(job)s AND NOT j.undone ORDER BY j.contact_id LIMIT %(limit)s",
            {"org": job.org_id, "job": job.pk, "limit": STEP_CONTACTS},
        )
        entries = cursor.fetchall()
    undoer = ContactUndo(job.org_id, undo_job)
    for contact_id, created, before, after, now, updated_at in entries:
        if updated_at is None:  # deleted since: nothing to put back
            undoer.result["unchanged"] += 1
        elif created:
            undoer.undo_created(contact_id, changed_since=updated_at > job.finished_at)
        else:
            undoer.undo_updated(contact_id, _json(before), _json(after), _json(now))
    undoer.remove_created()
    ContactJournal.objects.filter(
        org_id=job.org_id, job_id=job.pk, contact_id__in=[entry[0] for entry in entries]
    ).update(undone=True)
    return len(entries)


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


class ContactUndo:
    """Puts contacts back, counting into the undo job's `result`."""

    def __init__(self, org_id: int, undo_job: Job):
        self.org_id = org_id
        self.undo_job = undo_job
        self.result = undo_job.result
        self.field_keys = dict(CustomField.objects.filter(org_id=org_id).values_list("id", "key"))
        self.removing: list[int] = []  # created contacts to delete

    def keep(self, contact_id: int, field: str, reason: str) -> None:
        if len(self.result["kept_fields"]) < MAX_REPORTED_KEPT:
            self.result["kept_fields"].append({"contact_id": contact_id, "field": field, "reason": reason})

    def undo_created(self, contact_id: int, changed_since: bool) -> None:
        if changed_since:
            self.result["kept"] += 1
            self.keep(contact_id, "*", "Created by the job and changed since: kept.")
        else:
            self.removing.append(contact_id)

    def remove_created(self) -> None:
        """The step's created contacts nobody changed since, in one statement."""
        if self.removing:
            move_to_trash(self.org_id, self.removing, deleted_by=self.undo_job.created_by_id, job_id=self.undo_job.pk)
            self.result["removed"] += len(self.removing)

    def undo_updated(self, contact_id: int, before, after, now) -> None:
        if before is None or after is None:
            self.result["unchanged"] += 1
            return
        changed = self._fields(contact_id, before, after, now)
        if self._tags(contact_id, before, after, now) | self._values(contact_id, before, after, now):
            Contact.objects.filter(org_id=self.org_id, pk=contact_id).update(updated_at=timezone.now())
            changed = True
        self.result["restored" if changed else "unchanged"] += 1

    def _fields(self, contact_id: int, before, after, now) -> bool:
        changes = {}
        for column in FIELD_COLUMNS:
            old, new, current = before["fields"].get(column), after["fields"].get(column), now["fields"].get(column)
            if old == new:
                continue
            if current == new:
                changes[column] = old
            else:
                self.keep(contact_id, column, "Changed since the job: not overwritten.")
        if not changes:
            return False
        values = {**now["fields"], **changes}
        derived = {
            "email_key": email_key(values.get("email")),
            "folded": build_folded(values),
            "search_text": build_search_text(
                values["name"], values.get("email"), values.get("phone"), values["company"]
            ),
        }
        try:
            with transaction.atomic():
                Contact.objects.filter(org_id=self.org_id, pk=contact_id).update(
                    **changes, **derived, updated_at=timezone.now()
                )
        except IntegrityError:  # another contact took the old email since
            for column in changes:
                self.keep(contact_id, column, "Its old value is now another contact's: not put back.")
            return False
        return True

    def _tags(self, contact_id: int, before, after, now) -> bool:
        added = (set(after["tags"]) - set(before["tags"])) & set(now["tags"])
        if added:
            ContactTag.objects.filter(org_id=self.org_id, contact_id=contact_id, tag_id__in=added).delete()
        removed = set(before["tags"]) - set(after["tags"]) - set(now["tags"])
        if removed:
            contact = Contact.objects.filter(org_id=self.org_id, pk=contact_id).only("created_at").get()
            existing = Tag.objects.filter(org_id=self.org_id, pk__in=removed).values_list("id", flat=True)
            ContactTag.objects.bulk_create([tag_row(contact, tag_id) for tag_id in existing], ignore_conflicts=True)
        return bool(added or removed)

    def _values(self, contact_id: int, before, after, now) -> bool:
        changed = False
        for field_id in set(before["values"]) | set(after["values"]):
            old, new = before["values"].get(field_id), after["values"].get(field_id)
            if old == new:
                continue
            if now["values"].get(field_id) != new:
                key = self.field_keys.get(int(field_id), field_id)
                self.keep(contact_id, f"custom.{key}", "Changed since the job: not overwritten.")
                continue
            if int(field_id) not in self.field_keys:
                continue  # the field was deleted since, with its values
            FieldValue.objects.filter(org_id=self.org_id, contact_id=contact_id, field_id=int(field_id)).delete()
            FieldValue.objects.bulk_create(
                [_stored(self.org_id, contact_id, int(field_id), item) for item in old or []]
            )
            changed = True
        return changed


def _stored(org_id: int, contact_id: int, field_id: int, item: dict) -> FieldValue:
    """A stored value row back from its snapshot (contacts.journal)."""
    return FieldValue(
        org_id=org_id, contact_id=contact_id, field_id=field_id, position=item["position"], value=item["value"],
        folded=item["folded"], text_key=item["text_key"], number=item["number"],
        day=parse_date(item["day"]) if item["day"] else None,
        moment=parse_datetime(item["moment"]) if item["moment"] else None,
        created_at=parse_datetime(item["created_at"]),
    )  # fmt: skip
