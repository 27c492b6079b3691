"""The change feed's scheduled task (Procrastinate, discovered like jobs.tasks)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from changes import retention
from jobs.tasks import QUEUE


@app.periodic(cron="37 3 * * *")
@app.task(name="changes.expire", queue=QUEUE, queueing_lock="changes.expire")
def expire_changes(timestamp: int) -> None:
    """Daily: feed commits older than CHANGES_DAYS are deleted, in every org."""
    retention.expire()
