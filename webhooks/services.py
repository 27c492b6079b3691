"""Creating, changing and retrying webhooks (the API's and the admin's side; owner/admin checked there).

Every change locks the webhook's row first, as a delivery run does when it prepares or records an
attempt, so the two never interleave halfway.
"""

from __future__ import annotations

import base64
import secrets

from django.db import transaction
from django.utils import timezone

from contacts.models import SmartListView
from crm.errors import Conflict, FieldError, InvalidInput
from webhooks import events, targets
from webhooks.delivery import start_position, unsettled
from webhooks.models import Delivery, Webhook

SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 random bytes
FIELDS = ("url", "events", "view", "active")


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@transaction.atomic
def create(org_id: int, user_id: int | None, values: dict) -> Webhook:
    """A webhook of `org_id` (`values`: url, events, optional view and active), starting after the
    org's last committed change: it delivers what happens from now on."""
    values = {"view": None, "active": True, **values}
    _check(org_id, values)
    webhook = Webhook(
        org_id=org_id, url=values["url"], events=events.normalize(values["events"]), view_id=values["view"],
        active=values["active"], secret=new_secret(), created_by_id=user_id,
    )  # fmt: skip
    webhook.position = start_position(org_id)
    webhook.save()
    return webhook


@transaction.atomic
def update(webhook: Webhook, values: dict) -> Webhook:
    """PATCH: what `values` names changes. `active: true` on an inactive webhook resumes it where
    it stopped (its failed delivery first); `active: false` pauses it, keeping its place."""
    webhook = Webhook.objects.select_for_update().get(org_id=webhook.org_id, pk=webhook.pk)
    merged = {"url": webhook.url, "events": webhook.events, "view": webhook.view_id, **values}
    _check(webhook.org_id, merged, only=set(values))
    if "url" in values:
        webhook.url = values["url"]
    if "events" in values:
        webhook.events = events.normalize(values["events"])
    if "view" in values:
        webhook.view_id = values["view"]
    if values.get("active") is True and not webhook.active:
        _resume(webhook)
    elif values.get("active") is False:
        webhook.active, webhook.next_attempt_at = False, None
    webhook.save()
    return webhook


@transaction.atomic
def retry(webhook: Webhook, delivery: Delivery) -> Delivery:
    """Attempt an unsettled delivery now (not after its backoff), resuming its webhook if it was
    disabled or paused. Conflict for a delivery that already succeeded."""
    webhook = Webhook.objects.select_for_update().get(org_id=webhook.org_id, pk=webhook.pk)
    delivery.refresh_from_db()
    if delivery.status == Delivery.Status.SUCCEEDED:
        raise Conflict("This delivery succeeded; there is nothing to retry.", code="already_delivered")
    if webhook.active:
        _due_now(webhook, delivery)
    else:
        _resume(webhook)
    webhook.save()
    delivery.refresh_from_db()
    return delivery


def _resume(webhook: Webhook) -> None:
    """Active again, the failure streak forgotten; its unsettled delivery (if any) is due now."""
    webhook.active, webhook.disabled_reason, webhook.failing_since, webhook.failures = True, "", None, 0
    head = unsettled(webhook)
    if head is not None:
        _due_now(webhook, head)


def _due_now(webhook: Webhook, delivery: Delivery) -> None:
    now = timezone.now()
    if delivery.status == Delivery.Status.FAILED:
        delivery.status = Delivery.Status.RETRYING
    delivery.next_attempt_at = webhook.next_attempt_at = now
    delivery.save(update_fields=["status", "next_attempt_at", "updated_at"])


def _check(org_id: int, values: dict, only: set[str] | None = None) -> None:
    """InvalidInput naming each problem of the (merged) values; `only`: the keys given (PATCH)."""
    given = set(values) if only is None else only
    errors: list[FieldError] = []
    if "url" in given:
        try:
            targets.validate_url(values["url"])
        except InvalidInput as exc:
            errors += exc.errors
    view_id = values.get("view")
    views = SmartListView.objects.for_org(org_id)
    if "view" in given and view_id is not None and not views.filter(pk=view_id).exists():
        errors.append(FieldError("view", "not_found", "No saved view with this id."))
    if view_id is not None and {"events", "view"} & given:
        others = events.objects_of(values["events"]) - set(events.CONTACT_OBJECTS)
        if others and events.ALL not in values["events"]:
            errors.append(
                FieldError(
                    "events",
                    "not_with_view",
                    f"A webhook on a saved view receives contact and opportunity changes only, not {sorted(others)}.",
                )
            )
    if errors:
        raise InvalidInput(errors)
