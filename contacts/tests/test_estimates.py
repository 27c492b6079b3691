"""`count=estimate` comes from the org's own rows only (DESIGN §2): planner statistics pool every org,
so another org's values must never move this org's estimate."""

import pytest
from django.db import connection

from contacts.paging import ESTIMATE_EXACT_UP_TO
from contacts.testing import make_contacts

pytestmark = pytest.mark.django_db
SEARCH = "/api/v1/contacts/search"


def estimate(actor, *conditions, q=""):
    groups = [{"conditions": list(conditions)}] if conditions else []
    body = {"query": {"groups": groups}, "q": q, "count": "estimate", "limit": 1}
    response = actor.client.post(SEARCH, body, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["count"]


def analyze():
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE contacts_contact, contacts_contacttag, contacts_fieldvalue")


SHAPES = {
    "company substring": ({"field": "company", "op": "contains", "value": "zzorbit"},),
    "tag": ({"field": "tags", "op": "contains", "value": "b-only"},),
    "common tag": ({"field": "tags", "op": "contains", "value": "shared"},),
}


def test_another_orgs_values_never_change_this_orgs_estimates(alice, charlie):
    make_contacts(alice.org, [{"name": f"A{i}", "company": "Acme", "tags": ["shared"]} for i in range(40)])
    analyze()
    before = {name: estimate(alice, *conditions) for name, conditions in SHAPES.items()}
    before["q"] = estimate(alice, q="zzorbit")
    rows = [{"name": f"B{i}", "company": f"zzorbit {i}", "tags": ["b-only", "shared"]} for i in range(3000)]
    make_contacts(charlie.org, rows)
    analyze()
    after = {name: estimate(alice, *conditions) for name, conditions in SHAPES.items()}
    after["q"] = estimate(alice, q="zzorbit")
    assert after == before == {"company substring": 0, "tag": 0, "common tag": 40, "q": 0}


@pytest.mark.slow
def test_past_the_exact_part_the_estimate_comes_from_a_fixed_sample_of_the_orgs_own_rows(alice, charlie):
    make_contacts(alice.org, [{"name": f"A{i}", "tags": ["big"]} for i in range(ESTIMATE_EXACT_UP_TO + 500)])
    analyze()
    condition = {"field": "tags", "op": "contains", "value": "big"}
    first = estimate(alice, condition)
    assert first > ESTIMATE_EXACT_UP_TO  # more than the exact part counts
    assert estimate(alice, condition) == first  # the sample is fixed: the same answer again
    make_contacts(charlie.org, [{"name": f"B{i}", "tags": ["big"]} for i in range(5000)])
    analyze()
    assert estimate(alice, condition) == first
