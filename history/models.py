"""The change history of contacts (DESIGN §4 "Nothing is lost"), written by the database itself.

Statement-level triggers on the contacts, their tag rows and their value rows (migration 0001)
write one `ContactChange` per contact per transaction and fold every later statement of that
transaction into it, so no write path (API, import, bulk action, merge, restore, admin, raw SQL)
can forget to record a change. Who and why come from transaction-local settings (history.context).
"""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.utils import timezone

from orgs.models import Organization, TenantModel


class ContactChange(TenantModel):
    """One contact's changes of one transaction: `changes` is {field: [before, after]}, with
    `tags` as sorted names and `custom.<key>` in canonical JSON form. Invariants: at most one row
    per (org, contact, txid, unit); an `updated` row is never empty. No foreign key to the contact:
    the history outlives it (trash, merge, purge)."""

    class Event(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        TRASHED = "trashed"
        RESTORED = "restored"
        MERGED = "merged"  # moved to the trash by a merge into another contact
        PURGED = "purged"  # deleted from the trash for good

    class Source(models.TextChoices):
        API = "api"
        IMPORT = "import"
        BULK = "bulk"
        MERGE = "merge"
        RESTORE = "restore"
        ADMIN = "admin"
        SYSTEM = "system"  # no context set: a management command, a shell, raw SQL

    # No foreign key checked on every entry written: a trigger on the orgs table deletes a deleted
    # org's history (migration 0001). No index of its own: the read index leads with org_id.
    org = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    contact_id = models.BigIntegerField()
    at = models.DateTimeField(default=timezone.now)  # the transaction's start
    event = models.CharField(max_length=10, choices=Event.choices)
    source = models.CharField(max_length=20, choices=Source.choices)
    job_id = models.BigIntegerField(null=True)
    user_id = models.BigIntegerField(null=True)
    token = models.TextField(null=True)  # the knox token's public prefix, never the secret
    txid = models.BigIntegerField()  # pg_current_xact_id(): a transaction's statements make one entry
    unit = models.BigIntegerField(default=0)  # the context's id (history.context); 0 when none was set
    changes = models.JSONField(default=dict)

    class Meta:
        indexes = [
            models.Index(fields=["org", "contact_id", "-id"], name="contactchange_by_contact"),
            # The change feed reads a transaction's entries (changes.feed).
            models.Index(fields=["org", "txid", "id"], name="contactchange_by_txid"),
            # Retention deletes by age; entries are appended in time order, so a BRIN index finds
            # the old ones at almost no cost to writes.
            BrinIndex(fields=["at"], name="contactchange_at_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.event} of contact #{self.contact_id} ({self.source})"
