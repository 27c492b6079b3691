"""History older than HISTORY_DAYS is deleted by the daily task, in every org; newer stays; a deleted
org's history goes with it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from contacts.testing import make_contact
from history import tasks
from history.models import ContactChange
from orgs.models import Organization

pytestmark = pytest.mark.django_db


def test_the_daily_task_deletes_entries_older_than_history_days_in_every_org(org_a, org_b, settings):
    settings.HISTORY_DAYS = 730
    old_a, old_b, recent = make_contact(org_a, name="A"), make_contact(org_b, name="B"), make_contact(org_a, name="C")
    long_ago = timezone.now() - dt.timedelta(days=731)
    ContactChange.objects.filter(contact_id__in=[old_a.id, old_b.id]).update(at=long_ago)
    tasks.expire_history(timestamp=0)
    assert list(ContactChange.objects.values_list("contact_id", flat=True)) == [recent.id]


def test_a_deleted_orgs_history_goes_with_it(org_a, org_b):
    kept, gone = make_contact(org_a, name="A"), make_contact(org_b, name="B")
    Organization.objects.filter(pk=org_b.id).delete()
    assert list(ContactChange.objects.values_list("contact_id", flat=True)) == [kept.id]
    assert gone.org_id == org_b.id
