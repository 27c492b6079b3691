"""The next batch of a webhook: the feed's entries after its position that it subscribes to.

Entries are read in feed order (changes.feed.read), kept when their `<object>.<event>` is one of
the webhook's events and, for a webhook on a saved view, when they are about a contact in that
view as the batch is made (its own entries and its opportunities'; other objects' entries are
not sent). A page whose entries are all skipped moves the position on without sending anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from changes import feed
from contacts.models import SmartListView
from contacts.smart_list import SmartList
from crm.errors import InvalidInput
from orgs.models import Organization
from webhooks.events import CONTACT_OBJECTS, Matcher
from webhooks.models import Webhook

PAGES_PER_BATCH = 10  # pages of skipped entries read before the position is saved and the next looked at


class ViewUnusable(Exception):
    """The webhook's saved view is gone, or its query no longer compiles (a field it names was deleted)."""


@dataclass
class Batch:
    entries: list[feed.Entry]
    through: feed.Position  # where the webhook's position goes once the batch is delivered
    more: bool  # more entries may follow `through` now


def next_batch(webhook: Webhook) -> Batch:
    """Up to WEBHOOK_BATCH_SIZE entries for `webhook` after its position (run inside its org).
    Raises crm.errors.Gone (the position is older than the feed keeps) or ViewUnusable."""
    matcher = Matcher(webhook.events)
    after = webhook.position
    for _ in range(PAGES_PER_BATCH):
        page = feed.read(webhook.org_id, after, settings.WEBHOOK_BATCH_SIZE)
        entries = [entry for entry in page.entries if matcher(entry.object, entry.event)]
        if webhook.view_id is not None and entries:
            entries = _in_view(webhook, entries)
        after = max(after, page.next_position)
        if entries or not page.has_more:
            return Batch(entries, after, page.has_more)
    return Batch([], after, True)


def _in_view(webhook: Webhook, entries: list[feed.Entry]) -> list[feed.Entry]:
    about_contacts = [entry for entry in entries if entry.object in CONTACT_OBJECTS and entry.contact_id]
    ids = {entry.contact_id for entry in about_contacts}
    if not ids:
        return []
    inside = set(view_contacts(webhook.org_id, webhook.view_id).filter(pk__in=ids).values_list("pk", flat=True))
    return [entry for entry in about_contacts if entry.contact_id in inside]


def view_contacts(org_id: int, view_id: int):
    """The org's contacts in saved view `view_id` (its query and `q`), as a queryset; ViewUnusable
    when the view is gone or cannot be applied."""
    view = SmartListView.objects.for_org(org_id).filter(pk=view_id).first()
    if view is None:
        raise ViewUnusable(f"Its saved view #{view_id} was deleted.")
    try:
        return SmartList(view.query, view.q).contacts(Organization.objects.get(pk=org_id))
    except InvalidInput as exc:
        raise ViewUnusable(f"Its saved view #{view_id} cannot be applied: {exc.errors[0].detail}") from None


def body(webhook: Webhook, batch: Batch) -> str:
    """The JSON sent (and signed): the entries exactly as `GET /changes` shows them."""
    payload = {
        "type": "changes",
        "timestamp": timezone.now(),
        "data": [feed.entry_payload(webhook.org_id, entry) for entry in batch.entries],
        "next_cursor": feed.encode_cursor(webhook.org_id, batch.through),
    }
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"))
