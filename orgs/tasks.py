"""The orgs app's scheduled task (Procrastinate, discovered like jobs.tasks)."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from knox.models import get_token_model
from procrastinate.contrib.django import app


# The queue by its setting: orgs sits below the jobs app and imports none of it.
@app.periodic(cron="29 3 * * *")
@app.task(name="orgs.purge_expired_tokens", queue=settings.TASK_QUEUE, queueing_lock="orgs.purge_expired_tokens")
def purge_expired_tokens(timestamp: int) -> int:
    """Daily: API tokens past their expiry (knox's TOKEN_TTL, when one is set) are deleted. The
    request path refuses them already; this keeps the table from growing with dead ones."""
    deleted, _ = get_token_model().objects.filter(expiry__lt=timezone.now()).delete()
    return deleted
