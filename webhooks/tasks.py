"""Webhook deliveries on the task queue (Procrastinate, discovered like jobs.tasks).

Every second a dispatcher finds the webhooks with something due (one query across orgs) and
queues one delivery task each, with the lock `webhook:<id>`: a webhook's runs never overlap, so
its batches go one after the other, in feed order. Neither task has a queueing lock: a stalled
job of a killed worker is put back in the queue by jobs.tasks.recover_stalled, which a waiting twin
with the same queueing lock would refuse; the webhook's own `queued_at` mark keeps the dispatcher
from queueing a second run while one waits.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from procrastinate.contrib.django import app

from jobs.tasks import QUEUE
from webhooks import delivery

QUEUE_JOBS_KEPT_HOURS = 1  # finished rows of the queue (a dispatcher's every second) are deleted after this


@app.periodic(cron="* * * * * *")  # every second (croniter's sixth field)
@app.task(name="webhooks.dispatch", queue=QUEUE)
def dispatch_webhooks(timestamp: int) -> None:
    for org_id, webhook_id in delivery.due_webhooks():
        deliver_webhook.configure(lock=f"webhook:{webhook_id}").defer(org_id=org_id, webhook_id=webhook_id)


@app.task(name="webhooks.deliver", queue=QUEUE)
def deliver_webhook(org_id: int, webhook_id: int) -> None:
    delivery.run(org_id, webhook_id)


@app.periodic(cron="*/10 * * * *")
@app.task(name="webhooks.clean_up", queue=QUEUE, queueing_lock="webhooks.clean_up")
async def clean_up(timestamp: int) -> None:
    """Every 10 minutes: the queue's succeeded jobs older than an hour (Procrastinate keeps them, and
    the dispatcher adds one a second), and, in every org, succeeded deliveries older than
    WEBHOOK_DELIVERY_DAYS."""
    await app.job_manager.delete_old_jobs(nb_hours=QUEUE_JOBS_KEPT_HOURS, queue=QUEUE)
    await sync_to_async(delivery.expire)()
