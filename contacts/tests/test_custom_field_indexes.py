"""Custom text and number fields get a per-org expression index the compiler's filters use."""

import pytest
from django.db import connection

from contacts.search import SearchCompiler
from crm.db_security import as_org

pytestmark = pytest.mark.django_db


def index_names(org_id):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE %s", [f"contact_cf_{org_id}_%"])
        return {row[0] for row in cursor.fetchall()}


def seed(alice, count=400):
    """Enough rows that a selective index beats scanning any of the org's indexes whole."""
    from contacts.models import Contact

    Contact.objects.bulk_create(
        Contact(
            org=alice.org,
            name=f"c{i}",
            custom={
                "external_id": f"EXT-{i}",
                "score": i,
                "due": f"2025-{i % 12 + 1:02d}-01",
                "seen": f"2025-01-01T00:00:{i % 60:02d}.000000Z",
            },
        )
        for i in range(count)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact")


def plan_for(alice, field, op, value):
    from contacts.models import Contact

    compiler = SearchCompiler.for_member(alice.membership)
    plan = compiler.compile_request(
        {"query": {"groups": [{"conditions": [{"field": field, "op": op, "value": value}]}]}}
    )
    queryset = plan.filter(Contact.objects.for_member(alice.membership))
    with as_org(alice.org.id), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        return queryset.explain()


def create_field(alice, body, capture):
    with capture(execute=True):  # the index is built once the field's transaction commits
        response = alice.client.post("/api/v1/custom-fields", body, format="json")
    assert response.status_code == 201
    return response.json()


def test_text_and_number_fields_are_indexed_and_used(alice, django_capture_on_commit_callbacks):
    ext = create_field(alice, {"name": "External id", "data_type": "text"}, django_capture_on_commit_callbacks)
    score = create_field(alice, {"name": "Score", "data_type": "number"}, django_capture_on_commit_callbacks)
    create_field(
        alice, {"name": "Tier", "data_type": "single_select", "options": ["A"]}, django_capture_on_commit_callbacks
    )
    seed(alice)
    org = alice.org.id
    assert index_names(org) == {f"contact_cf_{org}_{ext['id']}", f"contact_cf_{org}_{score['id']}"}
    assert f"contact_cf_{org}_{ext['id']}" in plan_for(alice, "custom.external_id", "eq", "EXT-1")
    assert f"contact_cf_{org}_{score['id']}" in plan_for(alice, "custom.score", "between", [1, 5])


def test_date_fields_are_indexed_and_used(alice, django_capture_on_commit_callbacks):
    due = create_field(alice, {"name": "Due", "data_type": "date"}, django_capture_on_commit_callbacks)
    seen = create_field(alice, {"name": "Seen", "data_type": "datetime"}, django_capture_on_commit_callbacks)
    seed(alice)
    org = alice.org.id
    assert f"contact_cf_{org}_{due['id']}" in plan_for(alice, "custom.due", "between", ["2026-01-01", "2026-02-01"])
    assert f"contact_cf_{org}_{seen['id']}" in plan_for(alice, "custom.seen", "gt", "2026-01-01T00:00:00Z")


def test_deleting_the_field_drops_its_index(alice, django_capture_on_commit_callbacks):
    field = create_field(alice, {"name": "Score", "data_type": "number"}, django_capture_on_commit_callbacks)
    assert index_names(alice.org.id)
    with django_capture_on_commit_callbacks(execute=True):
        assert alice.client.delete(f"/api/v1/custom-fields/{field['id']}").status_code == 204
    assert index_names(alice.org.id) == set()


def test_custom_fields_get_planner_statistics(alice, django_capture_on_commit_callbacks):
    create_field(alice, {"name": "Score", "data_type": "number"}, django_capture_on_commit_callbacks)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_statistic_ext WHERE stxname LIKE 'contact_cfstat_%%' "
            "AND pg_get_statisticsobjdef_expressions(oid)::text LIKE '%%crm_custom_number%%score%%'"
        )
        assert cursor.fetchone() == (1,)
