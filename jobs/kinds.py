"""What each kind of job does, registered by the app that owns the work (contacts registers
`import` when it starts), so `jobs` knows no other app.

A kind's `run(job)` does the work in steps (`jobs.runner.step`), each committed with the job's
progress, so a job resumed after its worker died goes on from the last committed step: nothing
applied twice, nothing skipped. `undo(job, undo_job)` reverses a finished job the same way, and
`error_rows(job)` yields the job's error file (CSV rows, header first), and `expire(before)`
drops what only an undo needs once a job can no longer be undone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from jobs.models import Job


@dataclass(frozen=True)
class JobKind:
    run: Callable[[Job], None]
    undo: Callable[[Job, Job], None] | None = None
    error_rows: Callable[[Job], Iterator[list]] | None = None
    discard: Callable[[Job], None] | None = None  # drop what only a running job needs (an upload)
    # Drop what only an undo needs, for jobs finished before the given moment (all orgs).
    expire: Callable[[dt.datetime], int] | None = None


KINDS: dict[str, JobKind] = {}


def register(kind: str, job_kind: JobKind) -> None:
    KINDS[kind] = job_kind


def kind_of(job: Job) -> JobKind:
    return KINDS[job.undo_of.kind if job.kind == Job.Kind.UNDO else job.kind]
