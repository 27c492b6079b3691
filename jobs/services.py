"""Creating, cancelling and undoing jobs (the API's and the admin's side)."""

from __future__ import annotations

from django.utils import timezone

from crm.errors import Conflict
from jobs.kinds import KINDS
from jobs.models import Job


def enqueue(org_id: int, user_id: int | None, kind: str, params: dict, undo_of: Job | None = None) -> Job:
    """A new job of `org_id` started by `user_id`, and its task deferred in the same transaction:
    both exist or neither."""
    from jobs.tasks import run_job  # the queue's app is ready only once Django is

    job = Job.objects.create(org_id=org_id, kind=kind, params=params, created_by_id=user_id, undo_of=undo_of)
    run_job.configure(lock=f"job:{job.pk}").defer(org_id=job.org_id, job_id=job.pk)
    return job


def cancel(job: Job) -> Job:
    """A queued job is cancelled now; a running one at the end of its current step."""
    if job.finished:
        raise Conflict(f"The job is already {job.status}; there is nothing to cancel.", code="job_finished")
    if job.status == Job.Status.QUEUED:
        job.status, job.finished_at = Job.Status.CANCELLED, timezone.now()
    job.cancel_requested = True
    job.save(update_fields=["status", "finished_at", "cancel_requested"])
    return job


def undo(job: Job, user_id: int | None) -> Job:
    """A job that reverses `job` (DESIGN §4 Jobs: within TRASH_DAYS of its end)."""
    kind = KINDS.get(job.kind)
    if kind is None or kind.undo is None:
        raise Conflict(f"A job of kind {job.kind!r} cannot be undone.", code="not_undoable")
    if job.status == Job.Status.UNDONE:
        raise Conflict("The job is already undone.", code="already_undone")
    if not job.finished:
        raise Conflict(f"The job is {job.status}; cancel it or wait for it to finish.", code="job_not_finished")
    if job.undo_deadline < timezone.now():
        raise Conflict("The job finished too long ago to be undone.", code="undo_expired")
    pending = job.undos.exclude(status__in=[Job.Status.FAILED, Job.Status.CANCELLED])
    if pending.exists():
        raise Conflict("An undo of this job is already queued or running.", code="undo_in_progress")
    return enqueue(job.org_id, user_id, Job.Kind.UNDO, {}, undo_of=job)
