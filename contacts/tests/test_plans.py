"""Every DESIGN §5 list/search shape is served by indexes under row-level security (DESIGN §2), with
nothing PostgreSQL does not ship as leakproof: the service's own SQL for each shape, captured from
the API and run again under EXPLAIN ANALYZE as the app role in the org, never scans a table and
reads contacts in proportion to what the shape needs, not to the size of the org.

The org has 40,000 contacts beside another org of 20,000 with the same tags and fields, ANALYZEd:
big enough that the planner weighs its choices as it would at a million.
"""

import json
import re

import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.test import APIClient

from contacts import paging
from contacts.models import Contact, ContactTag, FieldValue
from contacts.paging import encode_cursor
from contacts.search import free_text
from contacts.search.compiler import DEFAULT_ORDER
from crm.db_security import as_org
from customization.models import CustomField, Tag
from orgs.models import Membership
from orgs.tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db]
ORG_CONTACTS, OTHER_CONTACTS = 40_000, 20_000
# Paging thresholds scaled to this org, so that "a page never reads much of the org" is a bound that means something.
SMALL_RESULT, FEW = 1_000, 100

SEED = """
INSERT INTO contacts_contact (org_id, first_name, last_name, name, email, email_key, phone, company, source, notes,
                              dnc, assigned_to_id, folded, search_text, created_at, updated_at)
SELECT %(org)s, 'first' || i, last, 'first' || i || ' ' || last, 'p' || i || '@x.test', 'p' || i || '@x.test', NULL,
       'co' || (i %% 100), '', '', i %% 3 = 0, CASE WHEN i %% 10 = 0 THEN %(member)s END,
       jsonb_build_object('first_name', 'first' || i, 'last_name', last, 'name', 'first' || i || ' ' || last,
                          'company', 'co' || (i %% 100)),
       'first' || i || ' ' || last || ' p' || i || '@x.test co' || (i %% 100),
       timestamptz '2024-01-01' + i * interval '1 minute', timestamptz '2024-01-01' + i * interval '1 minute'
FROM (SELECT i, CASE WHEN i %% 7 = 0 THEN 'johnson' ELSE 'smith' || i END AS last
      FROM generate_series(0, %(count)s - 1) AS i) AS rows;
-- The rows are this transaction's: with the table's statistics still those of an empty table, the
-- foreign-key checks of the inserts below were planned as a walk of the whole org per row.
ANALYZE contacts_contact;

INSERT INTO contacts_contacttag (org_id, contact_id, tag_id, created_at)
SELECT c.org_id, c.id, t.id, c.created_at
FROM (SELECT id, org_id, created_at, (row_number() OVER (ORDER BY id) - 1)::int AS i
      FROM contacts_contact WHERE org_id = %(org)s) c
JOIN customization_tag t ON t.org_id = c.org_id
WHERE (t.name = 'common' AND c.i %% 10 < 3) OR (t.name = 'rare' AND c.i %% 2000 = 1000)
   OR (t.name = 'old' AND c.i < 50);

INSERT INTO contacts_fieldvalue (org_id, contact_id, field_id, position, value, folded, text_key, number, day, moment,
                                 created_at)
SELECT c.org_id, c.id, f.id, 0,
       CASE f.key WHEN 'deal_size' THEN to_jsonb((c.i * 7919) %% 10000)
                  WHEN 'renewal' THEN to_jsonb((date '2022-01-01' + (c.i %% 1500))::text)
                  WHEN 'external_id' THEN to_jsonb('EXT-' || c.i)
                  ELSE to_jsonb(to_char(now() - (c.i %% 365) * interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) END,
       CASE f.key WHEN 'external_id' THEN 'ext-' || c.i END, CASE f.key WHEN 'external_id' THEN 'ext-' || c.i END,
       CASE f.key WHEN 'deal_size' THEN (c.i * 7919) %% 10000 END,
       CASE f.key WHEN 'renewal' THEN date '2022-01-01' + (c.i %% 1500) END,
       CASE f.key WHEN 'last_seen' THEN now() - (c.i %% 365) * interval '1 day' END, c.created_at
FROM (SELECT id, org_id, created_at, (row_number() OVER (ORDER BY id) - 1)::int AS i
      FROM contacts_contact WHERE org_id = %(org)s) c
JOIN customization_customfield f ON f.org_id = c.org_id;
"""
FIELDS = [("deal_size", "number"), ("renewal", "date"), ("external_id", "text"), ("last_seen", "datetime")]


def client_for(membership) -> APIClient:
    _, token = AuthToken.objects.create(user=membership.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_ORG_ID=str(membership.org_id))
    return client


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(paging, "SMALL_RESULT", SMALL_RESULT)
        patch.setattr(paging, "FEW", FEW)
        patch.setattr(free_text, "FEW", FEW)
        with connection.cursor() as cursor:
            # The session's cached plans were made by earlier tests on near-empty tables: a saved
            # foreign-key check planned then can walk a whole org per row of the seed below.
            cursor.execute("DISCARD PLANS")
        orgs = []
        for name, count in (("Plans", ORG_CONTACTS), ("Neighbour", OTHER_CONTACTS)):
            org = OrganizationFactory(name=name)
            owner = MembershipFactory(org=org, user=UserFactory(username=f"owner@{name}.test"), role="owner")
            member = MembershipFactory(
                org=org, user=UserFactory(username=f"member@{name}.test"), data_scope=Membership.DataScope.ASSIGNED
            )
            for tag in ("common", "rare", "old"):
                Tag.objects.create(org=org, name=tag)
            for key, data_type in FIELDS:
                CustomField.objects.create(org=org, key=key, name=key, data_type=data_type)
            with connection.cursor() as cursor:
                cursor.execute(SEED, {"org": org.id, "member": member.user_id, "count": count})
            orgs.append((org, owner, member))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        org, owner, member = orgs[0]
        yield {"org": org, "owner": client_for(owner), "member": client_for(member)}
        transaction.set_rollback(True)


def cond(field, op, value=None):
    return {"field": field, "op": op, **({} if value is None else {"value": value})}


def search(*conditions, q=""):
    groups = [{"conditions": list(conditions)}] if conditions else []
    return ("post", "/api/v1/contacts/search", {"query": {"groups": groups}, "q": q})


SHAPES = {
    "no filter": ("owner", ("post", "/api/v1/contacts/search", {"query": {"groups": []}})),
    "common tag": ("owner", search(cond("tags", "contains", "common"))),
    "rare tag": ("owner", search(cond("tags", "contains", "rare"))),
    "rare tag only on old contacts": ("owner", search(cond("tags", "contains", "old"))),
    "custom value held by one contact": ("owner", search(cond("custom.external_id", "eq", "EXT-20001"))),
    "custom number range, common": ("owner", search(cond("custom.deal_size", "between", [500, 5000]))),
    "custom number range, rare": ("owner", search(cond("custom.deal_size", "gte", 9995))),
    "custom date range, common": ("owner", search(cond("custom.renewal", "between", ["2023-01-01", "2026-12-31"]))),
    "custom date range, rare": ("owner", search(cond("custom.renewal", "eq", "2022-03-01"))),
    # 7 days: about 2% of the org (its values spread over a year). At 30 days (8%) the count is a
    # share of this small org for which reading the table is a fair plan, chosen or not by ANALYZE's
    # sample (it was, once, in a full run); 1M-contact figures are the benchmark's.
    "custom datetime within last 7 days": (
        "owner",
        search(cond("custom.last_seen", "within_last", {"amount": 7, "unit": "days"})),
    ),
    "q selective": ("owner", search(q="first2345")),
    "q common": ("owner", search(q="son")),
    "q no match": ("owner", search(q="zqxwv")),
    "OR of AND groups": (
        "owner",
        (
            "post",
            "/api/v1/contacts/search",
            {
                "query": {
                    "groups": [
                        {"conditions": [cond("tags", "contains", "common"), cond("custom.deal_size", "lt", 100)]},
                        {"conditions": [cond("custom.deal_size", "gt", 9990), cond("dnc", "eq", False)]},
                        {"conditions": [cond("company", "starts_with", "co9"), cond("tags", "contains_any", ["rare"])]},
                    ]
                }
            },
        ),
    ),
    "assigned-only: no filter": ("member", ("post", "/api/v1/contacts/search", {"query": {"groups": []}})),
    "assigned-only: common tag": ("member", search(cond("tags", "contains", "common"))),
    "assigned-only: rare tag on old contacts": ("member", search(cond("tags", "contains", "old"))),
    "assigned-only: q common": ("member", search(q="son")),
    "assigned-only: custom number range": ("member", search(cond("custom.deal_size", "between", [500, 5000]))),
    "GET: no filter": ("owner", ("get", "/api/v1/contacts", None)),
    "GET: common tag": ("owner", ("get", "/api/v1/contacts?tag=common", None)),
    "GET: rare tag on old contacts": ("owner", ("get", "/api/v1/contacts?tag=old", None)),
    "GET: q selective": ("owner", ("get", "/api/v1/contacts?q=first2345", None)),
    "GET: q no match": ("owner", ("get", "/api/v1/contacts?q=zqxwv", None)),
}


def nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


# contacts.paging.planner's statements: only planner settings, read and set, or set back.
PLANNER_SWITCHES = re.compile(
    r"SELECT (?:(?:current_setting\('[a-z_]+'\), )?set_config\('(?:enable_[a-z]+|max_parallel_workers_per_gather)', "
    r"'[a-z0-9]+', true\)(?:, )?)+"
)


def explain(org_id: int, captured: list[str]) -> list[dict]:
    """The captured request's statements again, as the app role in the org: planner switches
    replayed, each read of the contacts table under EXPLAIN ANALYZE. A read the service ran within
    a time budget and cancelled (a savepoint rolled back after it) is marked `budgeted`."""
    plans = []
    with as_org(org_id), connection.cursor() as cursor:
        for index, sql in enumerate(captured):
            head = sql.lstrip().upper()
            if head.startswith(("SET LOCAL ENABLE_", "SELECT SET_CONFIG('WORK_MEM'", "SET LOCAL WORK_MEM")) or (
                PLANNER_SWITCHES.fullmatch(sql.strip())
            ):
                cursor.execute(sql)
            elif head.startswith(("SELECT", "(SELECT")) and '"contacts_contact"' in sql and "set_config" not in sql:
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
                raw = cursor.fetchone()[0]
                later = captured[index + 1 : index + 3]
                budgeted = any(s.lstrip().upper().startswith("ROLLBACK TO SAVEPOINT") for s in later)
                plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
                plans.append({"sql": sql, "plan": plan, "budgeted": budgeted})
    return plans


def describe(plan: dict, depth: int = 0) -> str:
    """The plan as indented lines (node, relation, index, rows kept/dropped × loops), for failures."""
    line = "  " * depth + " ".join(
        str(part)
        for part in (
            plan["Node Type"],
            plan.get("Relation Name", ""),
            plan.get("Index Name", ""),
            f"rows={plan.get('Actual Rows')}",
            f"removed={plan.get('Rows Removed by Filter', 0)}",
            f"loops={plan.get('Actual Loops')}",
            plan.get("Filter", "")[:120],
        )
        if part != ""
    )
    return "\n".join([line, *(describe(child, depth + 1) for child in plan.get("Plans", []))])


def contact_rows_read(plan: dict, relation: str = "contacts_contact") -> int:
    """Rows the plan read from the contacts table (or `relation`): those it kept and those its
    filters dropped (a scan reads the other org's rows too)."""
    total = 0
    for node in nodes(plan):
        if node.get("Relation Name") == relation:
            kept = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
            total += kept * node.get("Actual Loops", 1)
    return total


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_is_index_served_under_row_level_security(world, shape):
    actor, (method, url, body) = SHAPES[shape]
    client = world[actor]
    with CaptureQueriesContext(connection) as queries:
        response = getattr(client, method)(url, body, format="json") if body else client.get(url)
    assert response.status_code == 200, response.content
    matches = response.json()["count"]
    captured = [q["sql"] for q in queries.captured_queries]
    plans = explain(world["org"].id, captured)
    if not plans:  # a term found nowhere: the one look-up through its index answered
        assert matches == 0 and any("crm_text_matches" in sql for sql in captured), captured

    for entry in plans:
        if entry["budgeted"]:
            continue  # a walk tried for a few milliseconds and cancelled by the service: bounded by time
        read = contact_rows_read(entry["plan"])
        if "COUNT(" in entry["sql"]:
            if matches > ORG_CONTACTS // 10:
                continue  # counting a large share of the org may read the table: the cheapest way
            bound = max(3 * matches + 1_000, ORG_CONTACTS // 5)  # its matches, or an index range; never the org
        else:
            # The ids of a small selection (at most a tenth of the org: for an assigned-only member the
            # planner may read their own contacts, ANALYZE's sample decides) plus the page by primary key.
            bound = ORG_CONTACTS // 10 + 50
        assert read <= bound, (
            f"{shape}: read {read} rows for {matches} matches\n{entry['sql']}\n{describe(entry['plan'])}"
        )


def test_the_text_lookup_reads_the_trigram_index_of_the_org_only(world):
    """What `crm_text_matches` runs, as its owner (who may read every org's haystacks)."""
    from django.conf import settings

    with as_org(world["org"].id), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('role', %s, true)", [settings.RLS_LOOKUP_ROLE])
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM contacts_contact "
            "WHERE org_id = NULLIF(current_setting('app.org_id', true), '')::bigint "
            "AND search_text LIKE ANY (%s::text[])",
            [["%first2345%"]],
        )
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    assert any(node.get("Index Name") == "contact_search_trgm" for node in nodes(plan)), describe(plan)
    assert plan["Actual Rows"] == 11 and contact_rows_read(plan) <= 50


def test_a_page_deep_in_the_org_is_a_keyset_seek(world):
    """Page 2,000 deep by cursor: the page reads its 50 rows, not the 30,000 before them."""
    row = Contact.objects.for_org(world["org"].id).order_by(*DEFAULT_ORDER)[30_000]
    cursor = encode_cursor(row, list(DEFAULT_ORDER))
    with CaptureQueriesContext(connection) as queries:
        response = world["owner"].get(f"/api/v1/contacts?count=none&limit=50&cursor={cursor}")
    assert response.status_code == 200 and len(response.json()["results"]) == 50
    (entry,) = explain(world["org"].id, [q["sql"] for q in queries.captured_queries])
    assert contact_rows_read(entry["plan"]) <= 1_000  # its 50 contacts and their tags and values


PROBE = 'AS "driver_0"'  # the first rows of the groups' conditions, to find a rare one


def test_an_or_without_a_count_reads_a_rare_group_from_its_own_condition(world):
    """`count=none` pages an OR from each group's first rows. The group whose custom range holds 36 of
    the org's 40,000 contacts is read from those 36, found through the value index; walked in list
    order, it read every deal size of the org (it has fewer matches than a page)."""
    body = {
        "query": {
            "groups": [
                {"conditions": [cond("tags", "contains", "common"), cond("dnc", "eq", False)]},
                {"conditions": [cond("custom.deal_size", "gt", 9990), cond("dnc", "eq", False)]},
            ]
        },
        "count": "none",
    }
    with CaptureQueriesContext(connection) as queries:
        response = world["owner"].post("/api/v1/contacts/search", body, format="json")
    assert response.status_code == 200, response.content
    plans = explain(world["org"].id, [q["sql"] for q in queries.captured_queries])
    assert plans
    for entry in plans:
        read = {table: contact_rows_read(entry["plan"], table) for table in ("contacts_contact", "contacts_fieldvalue")}
        assert max(read.values()) <= 2_000, f"read {read}\n{entry['sql']}\n{describe(entry['plan'])}"

    with as_org(world["org"].id):
        tagged = ContactTag.objects.filter(tag__name="common").values("contact_id")
        large = FieldValue.objects.filter(field__key="deal_size", number__gt=9990).values("contact_id")
        matches = Contact.objects.for_org(world["org"].id).filter(Q(pk__in=tagged) | Q(pk__in=large), dnc=False)
        expected = list(matches.order_by(*DEFAULT_ORDER).values_list("id", flat=True)[:50])
    assert [row["id"] for row in response.json()["results"]] == expected
    assert any(PROBE in q["sql"] for q in queries.captured_queries)
    # The groups' rows are matches already: the page reads them by id, without the OR's conditions.
    (page_read,) = [q["sql"] for q in queries.captured_queries if '"contacts_contact"."first_name"' in q["sql"]]
    assert "EXISTS" not in page_read and '"contacts_contact"."dnc"' not in page_read.split(" FROM ", 1)[1]

    # For an assigned-only member the groups walk their own contacts: a count over the org's rows
    # would make the answer's time depend on contacts they cannot see.
    with CaptureQueriesContext(connection) as queries:
        response = world["member"].post("/api/v1/contacts/search", body, format="json")
    assert response.status_code == 200, response.content
    assert not any(PROBE in q["sql"] for q in queries.captured_queries)


def test_a_rare_group_is_paged_under_its_other_conditions(world):
    """A rare group's first rows are its condition's contacts that meet the group's other conditions:
    taken before those (the newest 5 of the 36 large deals, some with `dnc`), the page would miss
    matches that the page's own query then drops."""
    body = {
        "query": {
            "groups": [
                {"conditions": [cond("tags", "contains", "old"), cond("dnc", "eq", False)]},
                {"conditions": [cond("custom.deal_size", "gt", 9990), cond("dnc", "eq", False)]},
            ]
        },
        "count": "none",
        "limit": 5,
    }
    response = world["owner"].post("/api/v1/contacts/search", body, format="json")
    assert response.status_code == 200, response.content
    with as_org(world["org"].id):
        large = FieldValue.objects.filter(field__key="deal_size", number__gt=9990).values("contact_id")
        newest = Contact.objects.for_org(world["org"].id).filter(pk__in=large).order_by(*DEFAULT_ORDER)
        assert any(contact.dnc for contact in newest[:5])  # else the test shows nothing
        expected = list(newest.filter(dnc=False).values_list("id", flat=True)[:5])
    assert [row["id"] for row in response.json()["results"]] == expected


def test_a_contacts_read_is_planned_once_not_on_every_request(world):
    """`GET /contacts/{id}` reads its contact, tags and values by one prepared statement
    (contacts.models.visible_contact) bound to scalars, so PostgreSQL keeps a generic plan after the
    first five runs. Bound to arrays of ids, at this size its generic plan was estimated for arrays
    of unknown length and lost to a custom plan every time: the whole statement was planned again on
    every request, most of PostgreSQL's share of the request."""
    client = world["owner"]
    contact_id = client.get("/api/v1/contacts?limit=1&count=none").json()["results"][0]["id"]
    for _ in range(10):
        assert client.get(f"/api/v1/contacts/{contact_id}").json()["id"] == contact_id
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            ' WHERE statement LIKE \'SELECT "id", "org_id", %%FROM contacts_contact WHERE org_id = $%%\''
        )
        assert cursor.fetchall() == [(5, 5)]
