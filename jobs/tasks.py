"""The task queue's tasks (Procrastinate; discovered in each app's `tasks` module).

The queue's rows only say "run job N of org M"; the job's state is the `Job` row (jobs.runner).
A job is deferred with the lock `job:<id>`, so one worker at a time runs it.
"""

from __future__ import annotations

from django.conf import settings
from procrastinate import RetryStrategy, exceptions
from procrastinate.contrib.django import app
from procrastinate.jobs import Status

from jobs import runner

QUEUE = settings.TASK_QUEUE


@app.task(name="jobs.run", queue=QUEUE, retry=RetryStrategy(max_attempts=10, exponential_wait=2))
def run_job(org_id: int, job_id: int) -> None:
    runner.run(org_id, job_id)


@app.periodic(cron="* * * * *")
@app.task(name="jobs.recover_stalled", queue=QUEUE, queueing_lock="jobs.recover_stalled")
async def recover_stalled(timestamp: int) -> None:
    """Jobs of a worker that stopped sending heartbeats (killed, its machine gone) run again on
    a live one, where they resume (jobs.runner). Also run when a worker starts."""
    await retry_stalled_jobs()


@app.periodic(cron="17 3 * * *")
@app.task(name="jobs.expire_undo_data", queue=QUEUE, queueing_lock="jobs.expire_undo_data")
def expire_undo_data(timestamp: int) -> None:
    """Daily: what only an undo needs goes once TRASH_DAYS have passed."""
    runner.expire_undo_data()


async def retry_stalled_jobs() -> list[str]:
    """Run again the jobs of workers whose heartbeat stopped; returns their task names."""
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=settings.JOB_STALLED_SECONDS)
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
        except exceptions.UniqueViolation:
            # A copy with the same queueing lock already waits (a periodic task deferred again
            # while this one was stalled): that copy does the work; this one ends.
            await app.job_manager.finish_job(job, status=Status.ABORTED, delete_job=False)
    return [job.task_name for job in stalled]
