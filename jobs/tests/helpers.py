"""Running jobs in the test's own process and transaction, as a worker would (jobs.runner)."""

from __future__ import annotations

from jobs import runner
from jobs.models import Job


def run_jobs() -> int:
    """Run every queued job, oldest first, until none is left (an undo queued meanwhile too)."""
    ran = 0
    while True:
        queued = list(Job.objects.filter(status=Job.Status.QUEUED).order_by("id").values_list("org_id", "id"))
        if not queued:
            return ran
        for org_id, job_id in queued:
            runner.run(org_id, job_id)
            ran += 1
