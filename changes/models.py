"""The change feed (DESIGN §4 "Change feed and webhooks"): every change to an org's contacts,
opportunities, tags, custom fields and saved views, in commit order.

Entries are written by the database itself: contacts' by the history triggers (history.models),
the other objects' by the row triggers of migration 0001 (`ObjectChange`). Each transaction that
writes entries gets a `Commit` row, numbered at commit time in its org's own sequence
(`FeedState.last_seq`), which gives the feed its order (docs/decisions.md, "Change feed order").
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from orgs.models import Organization, TenantModel


class Commit(TenantModel):
    """A transaction that wrote feed entries in an org. `seq` is set by a deferred trigger as the
    transaction commits, under the lock of the org's `FeedState` row, so `seq` order is commit
    order within the org and a reader that sees seq n sees every committed seq below n.
    Invariant: unique per (org, txid); `seq` is null only while the transaction is open."""

    org = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    txid = models.BigIntegerField()
    seq = models.BigIntegerField(null=True)
    committed_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "txid"], name="commit_org_txid_uniq")]
        indexes = [models.Index(fields=["org", "seq"], name="commit_org_seq")]


class FeedState(TenantModel):
    """An org's feed counter (`last_seq`: the last commit numbered) and horizon (`expired_through`:
    the last seq whose entries were deleted by retention; an older cursor is a 410)."""

    org = models.OneToOneField(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, primary_key=True
    )
    last_seq = models.BigIntegerField(default=0)
    expired_through = models.BigIntegerField(default=0)


class ObjectChange(TenantModel):
    """A change to an opportunity, tag, custom field or saved view, one per row written (these are
    written one at a time); `changes` is {column: [before, after]}. Contacts' changes are in
    history.ContactChange."""

    class Object(models.TextChoices):
        OPPORTUNITY = "opportunity"
        TAG = "tag"
        CUSTOM_FIELD = "custom_field"
        VIEW = "view"

    class Event(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        DELETED = "deleted"

    org = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    object = models.CharField(max_length=20, choices=Object.choices)
    object_id = models.BigIntegerField()
    contact_id = models.BigIntegerField(null=True)  # an opportunity's contact: an assigned-only member's scope
    at = models.DateTimeField(default=timezone.now)
    event = models.CharField(max_length=10, choices=Event.choices)
    source = models.CharField(max_length=20)
    job_id = models.BigIntegerField(null=True)
    user_id = models.BigIntegerField(null=True)
    token = models.TextField(null=True)
    txid = models.BigIntegerField()
    changes = models.JSONField(default=dict)

    class Meta:
        indexes = [models.Index(fields=["org", "txid", "id"], name="objectchange_by_txid")]
