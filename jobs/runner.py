"""A job on a worker: started, run in steps committed with its progress, finished.

Every step runs in one transaction inside the job's org (row-level security, as a request),
under an advisory lock on the job, after checking that no cancel was asked and that the job's
progress is the one this worker last committed: a worker taken for dead and replaced stops at
its next step instead of applying it twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from crm.db_security import as_org, rls_bypass
from history.context import set_change_context
from jobs.errors import JobCancelled, JobFailed, JobSuperseded
from jobs.kinds import KINDS, kind_of
from jobs.models import Job

logger = logging.getLogger(__name__)

# First key of pg_advisory_xact_lock(int, int); the second is the job id.
JOB_LOCK_CLASS = 0x10B5
UNEXPECTED = "The job stopped on an unexpected error; what its finished steps wrote stays (see `progress`)."


def run(org_id: int, job_id: int) -> None:
    """Run or resume one job (what the queue's task calls)."""
    job = _start(org_id, job_id)
    if job is None:
        return
    kind = kind_of(job)
    try:
        if job.kind == Job.Kind.UNDO:
            kind.undo(job.undo_of, job)
        else:
            kind.run(job)
    except JobSuperseded:
        logger.warning("Job %s was taken over by another worker", job_id)
        return
    except JobCancelled:
        _finish(job, Job.Status.CANCELLED)
    except JobFailed as exc:
        _finish(job, Job.Status.FAILED, {"code": exc.code, "message": exc.message})
    except (OperationalError, InterfaceError):
        raise  # the database went away: the queue retries the job, which resumes
    except Exception:
        logger.exception("Job %s failed", job_id)
        _finish(job, Job.Status.FAILED, {"code": "internal_error", "message": UNEXPECTED})
    else:
        _finish(job, Job.Status.SUCCEEDED)


def _start(org_id: int, job_id: int) -> Job | None:
    with as_org(org_id):
        job = Job.objects.select_related("undo_of").filter(org_id=org_id, pk=job_id).first()
        if job is None or job.finished:
            return None
        if job.cancel_requested:
            Job.objects.filter(pk=job.pk).update(status=Job.Status.CANCELLED, finished_at=Now())
            return None
        Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, started_at=Coalesce("started_at", Now()))
        job.refresh_from_db()
        job.undo_of = Job.objects.filter(pk=job.undo_of_id).first()
        return job


@contextlib.contextmanager
def step(job: Job):
    """One step of `job`'s work, committed together with its progress.

    The caller does the step's writes, then advances `job.progress_done` (and `progress_total`,
    `result`, `error_count`, `position`), which are saved before the transaction commits. Raises
    JobCancelled when a cancel was asked, JobSuperseded when another worker moved the job on.
    """
    with as_org(job.org_id):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [JOB_LOCK_CLASS, job.pk % 2**31])
        status, progress, cancel = (
            Job.objects.filter(pk=job.pk).values_list("status", "progress_done", "cancel_requested").get()
        )
        if status != Job.Status.RUNNING or progress != job.progress_done:
            raise JobSuperseded
        if cancel:
            raise JobCancelled
        set_change_context(source=_source(job), user_id=job.created_by_id, job_id=job.pk)
        yield job
        Job.objects.filter(pk=job.pk).update(
            progress_done=job.progress_done,
            progress_total=job.progress_total,
            result=job.result,
            error_count=job.error_count,
            position=job.position,
        )


def _source(job: Job) -> str:
    """The history's source of a job's writes: its kind (`import`, `bulk`); an undo's, the undone job's."""
    return job.undo_of.kind if job.kind == Job.Kind.UNDO and job.undo_of is not None else job.kind


def _finish(job: Job, status: str, error: dict | None = None) -> None:
    result = dict(job.result or {})
    if error is not None:
        result["error"] = error
    with as_org(job.org_id):
        Job.objects.filter(pk=job.pk).update(status=status, result=result, finished_at=Now())
        if job.kind == Job.Kind.UNDO and status == Job.Status.SUCCEEDED:
            Job.objects.filter(pk=job.undo_of_id).update(status=Job.Status.UNDONE)
        discard = kind_of(job).discard
        if discard is not None and job.kind != Job.Kind.UNDO:
            discard(job)


def expire_undo_data(now: dt.datetime | None = None) -> int:
    """Drop, in every org, what only an undo needs of jobs finished more than TRASH_DAYS ago
    (they can no longer be undone). Run daily by the queue (jobs.tasks)."""
    before = (now or timezone.now()) - dt.timedelta(days=settings.TRASH_DAYS)
    dropped = 0
    with rls_bypass():  # one sweep across orgs, as the named escape hatch
        for kind in KINDS.values():
            if kind.expire is not None:
                dropped += kind.expire(before)
    return dropped
