"""The history app's scheduled task (Procrastinate, discovered like jobs.tasks)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from history import retention
from jobs.tasks import QUEUE


@app.periodic(cron="51 3 * * *")
@app.task(name="history.expire", queue=QUEUE, queueing_lock="history.expire")
def expire_history(timestamp: int) -> None:
    """Daily: change history older than HISTORY_DAYS is deleted, in every org."""
    retention.expire()
