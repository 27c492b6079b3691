"""The import's look-ups and updates never use a per-org partial index, even when the statistics
say the org is empty (a new org's first import): the index would look empty, and the planner
would read the whole org through it for every chunk."""

import re

import pytest
from django.db import connection

from contacts.importing import engine
from contacts.importing.options import parse_options
from contacts.models import Contact
from contacts.normalize import ContactNormalizer
from crm.db_security import as_org

pytestmark = pytest.mark.django_db


def explain(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def contacts(org, prefix: str, count: int) -> None:
    Contact.objects.bulk_create(
        Contact(org=org, name=f"{prefix}{i}", email=f"{prefix}{i}@example.com", custom={"score": i})
        for i in range(count)
    )


def test_lookups_and_updates_ignore_per_org_indexes_with_stale_statistics(
    alice, org_b, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the field's index is built on commit
        response = alice.client.post("/api/v1/custom-fields", {"name": "Score", "data_type": "number"}, format="json")
    assert response.status_code == 201
    contacts(org_b, "b", 5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")  # while alice's org has no contacts
    contacts(alice.org, "c", 2000)
    importer = engine.ContactImporter(ContactNormalizer.for_member(alice.membership), parse_options({}))
    emails = [f"c{i}@example.com" for i in range(0, 2000, 7)]
    with as_org(alice.org.id):
        with connection.cursor() as cursor:
            engine._create_staging(cursor)
            cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: the question is which index
        lookup = explain(importer._lookup_sql("lower(email) = ANY(%s::text[])", lock=True), [alice.org.id, emails])
        update = explain(importer._update_sql(Contact._meta.db_table), [alice.org.id])
    # The org is a run-time value in the plan (a constant would let `WHERE org_id = <org>` partial
    # indexes match), and no per-org index is used.
    for plan in (lookup, update):
        assert "contact_cf_" not in plan and not re.search(rf"org_id = {alice.org.id}\b", plan), plan
        assert re.search(r"org_id = (\$0|\(InitPlan 1\))", plan), plan
