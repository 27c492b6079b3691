"""Entries older than HISTORY_DAYS go, in every org, in one set-based DELETE (history.tasks, daily)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from crm.db_security import rls_bypass
from history.models import ContactChange


def expire(now: dt.datetime | None = None) -> int:
    """Delete the entries made more than HISTORY_DAYS before `now`; how many went."""
    before = (now or timezone.now()) - dt.timedelta(days=settings.HISTORY_DAYS)
    with rls_bypass():  # one sweep across orgs, as the named escape hatch
        deleted, _ = ContactChange.objects.filter(at__lt=before).delete()  # no relations: one DELETE
    return deleted
