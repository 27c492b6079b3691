"""The contacts app's scheduled tasks (Procrastinate, discovered like jobs.tasks)."""

from __future__ import annotations

from procrastinate.contrib.django import app

from contacts import trash
from crm.db_security import rls_bypass
from jobs.tasks import QUEUE


@app.periodic(cron="43 3 * * *")
@app.task(name="contacts.purge_trash", queue=QUEUE, queueing_lock="contacts.purge_trash")
def purge_trash(timestamp: int) -> None:
    """Daily: contacts in the trash for more than TRASH_DAYS are deleted for good, in every org."""
    with rls_bypass():  # one sweep across orgs, as the named escape hatch
        trash.purge_expired()
