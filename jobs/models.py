"""Jobs: long work (large imports, bulk actions, their undo, later deliveries) run by worker
processes of the task queue (Procrastinate, in the same database). A `Job` is the org's record of
one: what the API shows, what a worker resumes from. The queue's own rows only say "run job N";
everything a client sees lives here, under row-level security like every tenant table.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models

from orgs.models import Membership, Organization, TenantModel, TenantQuerySet


class JobQuerySet(TenantQuerySet):
    def for_member(self, membership: Membership) -> JobQuerySet:
        """A member sees their own jobs; an owner or admin every job of the org (DESIGN §4 Jobs)."""
        qs = self.for_org(membership.org_id)
        return qs if membership.is_admin else qs.filter(created_by_id=membership.user_id)


class Job(TenantModel):
    class Kind(models.TextChoices):
        IMPORT = "import"
        BULK = "bulk"  # an action on a smart list (contacts.bulk)
        UNDO = "undo"  # reverses another job (`undo_of`)

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        UNDONE = "undone"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.UNDONE)

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    params = models.JSONField(default=dict, blank=True)  # what the kind needs to run (options, format)
    progress_done = models.BigIntegerField(default=0)  # units applied and committed (import: rows)
    progress_total = models.BigIntegerField(null=True, blank=True)  # null until known
    result = models.JSONField(null=True, blank=True)  # the kind's outcome so far; final once finished
    error_count = models.BigIntegerField(default=0)  # rows in the error file
    # Where a resumed job goes on, in the kind's own terms (a bulk action: the last contact id done).
    position = models.BigIntegerField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    undo_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="undos")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["org", "-created_at", "-id"], name="job_org_created")]
        constraints = [models.UniqueConstraint(fields=["org", "id"], name="job_org_id_uniq")]

    def __str__(self) -> str:
        return f"{self.kind} job #{self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def undo_deadline(self) -> dt.datetime | None:
        """Until when `POST /jobs/{id}/undo` is accepted (TRASH_DAYS after it finished)."""
        if self.finished_at is None:
            return None
        return self.finished_at + dt.timedelta(days=settings.TRASH_DAYS)
