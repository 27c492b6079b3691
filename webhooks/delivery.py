"""Delivering a webhook's batches, on a worker of the task queue (webhooks.tasks), never in a request.

One run, for one webhook (its task holds the queue lock `webhook:<id>`, so runs of a webhook are
serial), repeats while there is something due and its time lasts:
1. `_prepare`, one transaction inside the org: the webhook's unsettled delivery if it is due, or a
   new one holding the next batch (webhooks.batches), written before anything is sent;
2. `_send`, outside any transaction: the target checked again (webhooks.targets), the body signed
   (Standard Webhooks) and POSTed (webhooks.transport);
3. `_record`, one transaction: the attempt; on a 2xx the delivery succeeds and the webhook's
   position moves past it; otherwise it is retried later, as it was, or after
   WEBHOOK_DISABLE_AFTER_HOURS of failures the webhook is disabled.
4. A batch that took everything due is followed by the next one WEBHOOK_BATCH_INTERVAL_SECONDS
   after it started at the earliest (a backlog goes at once, batch after batch).
A worker killed anywhere in between leaves either no delivery or an unsettled one, sent again by
the next run (at least once; receivers dedupe on `webhook-id`).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from dataclasses import dataclass

import standardwebhooks
from django.conf import settings
from django.db import connection
from django.utils import timezone

from changes import feed
from changes.feed import Position
from crm.db_security import as_org, rls_bypass
from crm.errors import Gone
from webhooks import batches, targets, transport
from webhooks.models import Delivery, Webhook

logger = logging.getLogger(__name__)

RUN_SECONDS = 30  # one task run delivers for at most this long, then leaves the worker to others
QUEUED_STALE_SECONDS = 300  # a webhook marked queued this long without a run starting is queued again
BACKOFF_FACTOR = 6  # 5 s, 30 s, 3 min, 18 min, 1.8 h, then WEBHOOK_RETRY_MAX_SECONDS
USER_AGENT = "crm-webhooks/1"


@dataclass(frozen=True)
class Prepared:
    """What one attempt needs, read in `_prepare`'s transaction."""

    delivery_id: int
    webhook_id: int
    message_id: str
    body: str
    url: str
    secret: str


def run(org_id: int, webhook_id: int, seconds: float = RUN_SECONDS) -> None:
    """Deliver what is due for one webhook, for at most about `seconds`."""
    deadline = time.monotonic() + seconds
    with as_org(org_id):  # from here on a new change queues another run (it waits for this one)
        Webhook.objects.filter(org_id=org_id, pk=webhook_id).update(queued_at=None)
    while time.monotonic() < deadline:
        started = time.monotonic()
        prepared, more = _prepare(org_id, webhook_id)
        if prepared is None:
            if more:
                continue
            return
        outcome = _send(prepared)
        _record(org_id, prepared, outcome)
        if not outcome.ok:
            return  # later entries wait behind the failed batch
        if not more:
            # Caught up: what changes next gathers for the interval, then goes as one batch. Sent
            # at once, a steady write load became a request per few entries (a worker's CPU).
            next_batch = min(started + settings.WEBHOOK_BATCH_INTERVAL_SECONDS, deadline)
            time.sleep(max(0.0, next_batch - time.monotonic()))


def _prepare(org_id: int, webhook_id: int) -> tuple[Prepared | None, bool]:
    """(the delivery to attempt now or None, whether more entries than it holds are due already)."""
    now = timezone.now()
    with as_org(org_id):
        webhook = Webhook.objects.select_for_update().filter(org_id=org_id, pk=webhook_id, active=True).first()
        if webhook is None:
            return None, False
        head = unsettled(webhook)
        if head is not None:
            due = head.status != Delivery.Status.FAILED and head.next_attempt_at <= now
            # A batch sent again: what gathered behind it while it failed is a backlog, not worth
            # the interval's wait.
            return (_prepared(webhook, head), True) if due else (None, False)
        return _new_delivery(webhook, now)


def unsettled(webhook: Webhook) -> Delivery | None:
    """The webhook's delivery not yet succeeded (at most one: later entries wait behind it)."""
    rows = Delivery.objects.filter(org_id=webhook.org_id, webhook_id=webhook.pk, status__in=Delivery.UNSETTLED)
    return rows.order_by("id").first()


def _new_delivery(webhook: Webhook, now: dt.datetime) -> tuple[Prepared | None, bool]:
    try:
        batch = batches.next_batch(webhook)
    except Gone:
        _disable(webhook, now, f"Changes it had not delivered were deleted (older than {settings.CHANGES_DAYS} days).")
        return None, False
    except batches.ViewUnusable as exc:
        _disable(webhook, now, str(exc))
        return None, False
    if not batch.entries:
        if batch.through > webhook.position:
            webhook.position = batch.through
            webhook.save(update_fields=["position_seq", "position_part", "position_id", "updated_at"])
        return None, batch.more
    first = batch.entries[0].position
    delivery = Delivery.objects.create(
        org_id=webhook.org_id, webhook=webhook, message_id=f"msg_{secrets.token_urlsafe(18)}",
        first_seq=first.seq, first_part=first.part, first_id=first.id,
        last_seq=batch.through.seq, last_part=batch.through.part, last_id=batch.through.id,
        entry_count=len(batch.entries), body=batches.body(webhook, batch), next_attempt_at=now,
    )  # fmt: skip
    webhook.next_attempt_at = now
    webhook.save(update_fields=["next_attempt_at", "updated_at"])
    return _prepared(webhook, delivery), batch.more


def _prepared(webhook: Webhook, delivery: Delivery) -> Prepared:
    return Prepared(delivery.pk, webhook.pk, delivery.message_id, delivery.body, webhook.url, webhook.secret)


def _send(prepared: Prepared) -> transport.Outcome:
    """One attempt; the target is checked against what its name resolves to now."""
    try:
        target = targets.check(prepared.url)
    except targets.RefusedTarget as exc:
        return transport.Outcome(None, None, f"Not sent: {exc.detail}")
    now = timezone.now()
    data = prepared.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": prepared.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(prepared.secret).sign(prepared.message_id, now, data),
    }
    return transport.post(target, data, headers, settings.WEBHOOK_TIMEOUT_SECONDS, settings.WEBHOOK_CA_BUNDLE)


def _record(org_id: int, prepared: Prepared, outcome: transport.Outcome) -> None:
    now = timezone.now()
    with as_org(org_id):
        webhook = Webhook.objects.select_for_update().filter(org_id=org_id, pk=prepared.webhook_id).first()
        delivery = Delivery.objects.filter(org_id=org_id, pk=prepared.delivery_id).first()
        if webhook is None or delivery is None or delivery.status == Delivery.Status.SUCCEEDED:
            return  # deleted meanwhile, or settled by another run
        delivery.attempts += 1
        delivery.response_code, delivery.latency_ms, delivery.error = outcome.status, outcome.latency_ms, outcome.error
        if outcome.ok:
            _succeeded(webhook, delivery)
        else:
            _failed(webhook, delivery, now)
        delivery.save()
        webhook.save()


def _succeeded(webhook: Webhook, delivery: Delivery) -> None:
    delivery.status, delivery.next_attempt_at, delivery.body = Delivery.Status.SUCCEEDED, None, ""
    webhook.position = max(webhook.position, delivery.last)
    webhook.failing_since, webhook.failures, webhook.next_attempt_at = None, 0, None


def _failed(webhook: Webhook, delivery: Delivery, now: dt.datetime) -> None:
    webhook.failures += 1
    webhook.failing_since = webhook.failing_since or now
    failing_for = now - webhook.failing_since
    if failing_for >= dt.timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS):
        delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, None
        last = delivery.error or f"HTTP {delivery.response_code}"
        hours = failing_for.total_seconds() / 3600
        _disable(webhook, now, f"Deliveries failed for {hours:.0f} hours (last attempt: {last}).", save=False)
        return
    delivery.status = Delivery.Status.RETRYING
    delivery.next_attempt_at = webhook.next_attempt_at = now + dt.timedelta(seconds=backoff(webhook.failures))


def backoff(failures: int) -> float:
    """Seconds before the next attempt after `failures` consecutive failed ones."""
    return min(settings.WEBHOOK_RETRY_SECONDS * BACKOFF_FACTOR ** (failures - 1), settings.WEBHOOK_RETRY_MAX_SECONDS)


def _disable(webhook: Webhook, now: dt.datetime, why: str, save: bool = True) -> None:
    webhook.active, webhook.next_attempt_at = False, None
    webhook.disabled_reason = f"Disabled on {now:%Y-%m-%d %H:%M} UTC: {why}"
    logger.warning("Webhook %s of org %s disabled: %s", webhook.pk, webhook.org_id, why)
    if save:
        webhook.save()


# --- across orgs: which webhooks have something due, and the log's retention ---------------------

# Active webhooks not queued already whose unsettled delivery is due, or, without one, whose org's
# feed has a commit they have not delivered through ((last_seq, 2, 0): after that commit's entries).
# Marked queued in the same statement; rows locked by a run or a request are left for the next tick.
DUE = """
WITH due AS (
    SELECT w.id FROM webhooks_webhook w
    LEFT JOIN changes_feedstate f ON f.org_id = w.org_id
    WHERE w.active AND (w.queued_at IS NULL OR w.queued_at < %(stale)s)
      AND (w.next_attempt_at <= %(now)s
           OR (w.next_attempt_at IS NULL
               AND (coalesce(f.last_seq, 0), 2, 0) > (w.position_seq, w.position_part, w.position_id)))
    FOR UPDATE OF w SKIP LOCKED
)
UPDATE webhooks_webhook w SET queued_at = %(now)s FROM due WHERE w.id = due.id
RETURNING w.org_id, w.id
"""


def due_webhooks(now: dt.datetime | None = None) -> list[tuple[int, int]]:
    """(org id, webhook id) of every webhook with something to deliver now, marked queued."""
    now = now or timezone.now()
    with rls_bypass(), connection.cursor() as cursor:  # one sweep across orgs, as the named escape hatch
        cursor.execute(DUE, {"now": now, "stale": now - dt.timedelta(seconds=QUEUED_STALE_SECONDS)})
        return [(org_id, webhook_id) for org_id, webhook_id in cursor.fetchall()]


def expire(now: dt.datetime | None = None) -> int:
    """Delete succeeded deliveries older than WEBHOOK_DELIVERY_DAYS, in every org; how many went."""
    before = (now or timezone.now()) - dt.timedelta(days=settings.WEBHOOK_DELIVERY_DAYS)
    with rls_bypass():
        deleted, _ = Delivery.objects.filter(created_at__lt=before, status=Delivery.Status.SUCCEEDED).delete()
    return deleted


def start_position(org_id: int) -> Position:
    """Where a webhook created now starts: after the org's last committed change (never before
    commit 1, so an org without changes yet has nothing due)."""
    return max(feed.head(org_id), Position(0, 2, 0))
