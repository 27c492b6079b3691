"""Webhooks (DESIGN §4 "Change feed and webhooks"): an org's subscriptions to its change feed, and
the log of what was sent to each.

A webhook follows the feed (changes.feed) from `position`: its deliveries carry the entries after
it, in feed order, one batch at a time. A batch is a `Delivery`, written before the first attempt
and retried as it was (same body, same `webhook-id`) until the receiver answers 2xx; only then
does the webhook's position move past it, so a worker killed at any point loses nothing
(at least once). Later entries wait behind an unsettled batch (order).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from changes.feed import Position
from contacts.models import SmartListView
from orgs.models import Membership, Organization, TenantModel, TenantQuerySet

URL_MAX_LENGTH = 2000


class AdminOnlyQuerySet(TenantQuerySet):
    def for_member(self, membership: Membership) -> AdminOnlyQuerySet:
        """An owner or admin sees the org's webhooks and deliveries; a member none (DESIGN §4)."""
        qs = self.for_org(membership.org_id)
        return qs if membership.is_admin else qs.none()


class Webhook(TenantModel):
    """A subscription of `url` to the org's changes (`events`, optionally only the contacts of a
    saved `view`). Invariants: at most one delivery is unsettled (pending or retrying, or failed
    while the webhook is disabled), and it is the oldest not yet succeeded; `next_attempt_at` is
    set exactly while there is one; `position` only moves forward, after a 2xx."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    url = models.CharField(max_length=URL_MAX_LENGTH)
    events = ArrayField(models.CharField(max_length=40))
    # Checked within the org when set; a view deleted later disables the webhook at its next
    # delivery (never silently widened to every contact), so no database constraint.
    view = models.ForeignKey(
        SmartListView, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    active = models.BooleanField(default=True)
    secret = models.CharField(max_length=100)  # `whsec_<base64>`, shown once at creation
    # The feed position delivered through (changes.feed.Position): entries after it are still to send.
    position_seq = models.BigIntegerField(default=0)
    position_part = models.BigIntegerField(default=0)
    position_id = models.BigIntegerField(default=0)
    disabled_reason = models.TextField(blank=True, default="")
    failing_since = models.DateTimeField(null=True, blank=True)  # first failure of the current streak
    failures = models.IntegerField(default=0)  # consecutive failed attempts: the backoff's step
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # when the unsettled delivery is due
    queued_at = models.DateTimeField(null=True, blank=True)  # a delivery task is queued for it
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AdminOnlyQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "id"], name="webhook_org_id_uniq")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"Webhook #{self.pk} → {self.url}"

    @property
    def position(self) -> Position:
        return Position(self.position_seq, self.position_part, self.position_id)

    @position.setter
    def position(self, value: Position) -> None:
        self.position_seq, self.position_part, self.position_id = value.seq, value.part, value.id


class Delivery(TenantModel):
    """One batch of feed entries for one webhook, and its attempts. `first_*` is the position of
    its first entry, `last_*` the position the webhook moves to once it succeeds (after its last
    entry and any entry its filters skipped). `body` is what is signed and sent, kept until it
    succeeds so every retry sends the same bytes under the same `message_id` (`webhook-id`)."""

    class Status(models.TextChoices):
        PENDING = "pending"  # written, its attempt due now or under way
        RETRYING = "retrying"  # the last attempt failed; the next one is at `next_attempt_at`
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # given up: the webhook was disabled (a retry or reactivation resumes it)

    UNSETTLED = (Status.PENDING, Status.RETRYING, Status.FAILED)

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    # (org_id, webhook_id) → webhooks_webhook (org_id, id), ON DELETE CASCADE: migration 0001.
    webhook = models.ForeignKey(
        Webhook, on_delete=models.CASCADE, db_constraint=False, db_index=False, related_name="deliveries"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    message_id = models.CharField(max_length=40)
    first_seq = models.BigIntegerField()
    first_part = models.BigIntegerField()
    first_id = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    last_part = models.BigIntegerField()
    last_id = models.BigIntegerField()
    entry_count = models.IntegerField()
    body = models.TextField(blank=True, default="")
    attempts = models.IntegerField(default=0)
    response_code = models.IntegerField(null=True, blank=True)
    latency_ms = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AdminOnlyQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["org", "webhook", "-id"], name="delivery_org_webhook"),
            models.Index(fields=["created_at"], name="delivery_created"),  # retention, across orgs
        ]
        verbose_name_plural = "deliveries"

    def __str__(self) -> str:
        return f"Delivery #{self.pk} of webhook #{self.webhook_id} ({self.status})"

    @property
    def first(self) -> Position:
        return Position(self.first_seq, self.first_part, self.first_id)

    @property
    def last(self) -> Position:
        return Position(self.last_seq, self.last_part, self.last_id)
