"""Keyset cursors and count modes on GET /contacts and POST /contacts/search."""

import datetime as dt
import re

import pytest
from django.db.models import Q
from django.utils import timezone

from contacts.models import Contact, ContactTag
from contacts.services import add_tags
from contacts.testing import make_contact
from customization.models import CustomField

pytestmark = pytest.mark.django_db


@pytest.fixture
def many(alice):
    """23 contacts; groups of them share created_at so the id tiebreak matters; some lack a score."""
    CustomField.objects.create(org=alice.org, key="score", name="Score", data_type="number")
    base = timezone.now() - dt.timedelta(days=1)
    for index in range(23):
        custom = {"score": index % 4} if index % 5 else {}
        make_contact(
            org=alice.org,
            name=f"Person {index:02d}",
            created_at=base + dt.timedelta(minutes=index // 3),
            custom=custom,
            search_text=f"person {index:02d}",
        )
    make_contact(org=alice.org, name="Other org? no, same org but filtered", tags=["skip"])
    return alice


def walk_get(actor, query):
    ids, url = [], f"/api/v1/contacts?{query}"
    body = actor.client.get(url).json()
    while True:
        ids += [c["id"] for c in body["results"]]
        if not body["next_cursor"]:
            return ids
        body = actor.client.get(f"/api/v1/contacts?{query}&cursor={body['next_cursor']}").json()


@pytest.mark.parametrize("ordering", ["", "&ordering=name", "&ordering=-name", "&ordering=created_at"])
def test_cursor_walk_matches_one_big_page(many, ordering):
    everything = [c["id"] for c in many.client.get(f"/api/v1/contacts?limit=200{ordering}").json()["results"]]
    assert walk_get(many, f"limit=4{ordering}") == everything
    assert len(everything) == 24


def test_next_link_carries_the_cursor(many):
    body = many.client.get("/api/v1/contacts?limit=5&count=none").json()
    assert body["count"] is None and "cursor=" in body["next"]


def search_walk(actor, body):
    ids, cursor = [], None
    while True:
        page = actor.client.post(
            "/api/v1/contacts/search", {**body, **({"cursor": cursor} if cursor else {})}, format="json"
        ).json()
        ids += [c["id"] for c in page["results"]]
        cursor = page["next_cursor"]
        if not cursor:
            return ids


@pytest.mark.parametrize(
    "sort",
    [
        [],
        [{"field": "custom.score", "direction": "desc"}],
        [{"field": "custom.score", "direction": "asc"}, {"field": "name", "direction": "desc"}],
        [{"field": "company", "direction": "asc"}],
    ],
)
def test_search_cursor_walk_matches_offset_order(many, sort):
    body = {
        "sort": sort,
        "query": {"groups": [{"conditions": [{"field": "name", "op": "starts_with", "value": "person"}]}]},
    }
    everything = [
        c["id"]
        for c in many.client.post("/api/v1/contacts/search", {**body, "limit": 200}, format="json").json()["results"]
    ]
    assert len(everything) == 23
    assert search_walk(many, {**body, "limit": 3}) == everything


@pytest.mark.parametrize("mode", ["exact", "estimate", "none"])
def test_count_modes(many, mode):
    listed = many.client.get(f"/api/v1/contacts?count={mode}").json()
    searched = many.client.post("/api/v1/contacts/search", {"count": mode}, format="json").json()
    for body in (listed, searched):
        if mode == "exact":
            assert body["count"] == 24
        elif mode == "none":
            assert body["count"] is None
        else:
            assert isinstance(body["count"], int) and body["count"] >= 0


@pytest.mark.parametrize(
    "query", ["cursor=garbage", "cursor=eyJzIjoieCIsInYiOltdfQ", "count=lots", "cursor=abc&offset=5"]
)
def test_bad_cursor_or_count_is_422(many, query):
    response = many.client.get(f"/api/v1/contacts?{query}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] in ("cursor", "count")


def test_cursor_of_another_sort_is_422(many):
    cursor = many.client.get("/api/v1/contacts?limit=2").json()["next_cursor"]
    response = many.client.get(f"/api/v1/contacts?limit=2&ordering=name&cursor={cursor}")
    assert response.status_code == 422 and response.json()["errors"][0]["code"] == "invalid_cursor"
    response = many.client.post(
        "/api/v1/contacts/search", {"cursor": cursor, "sort": [{"field": "name"}]}, format="json"
    )
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "cursor"


def test_cursor_never_crosses_orgs(many, charlie):
    cursor = many.client.get("/api/v1/contacts?limit=2").json()["next_cursor"]
    body = charlie.client.get(f"/api/v1/contacts?limit=2&cursor={cursor}").json()
    assert body["results"] == []


def _statements(actor, method, url, body=None):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        response = getattr(actor.client, method)(url, body, format="json") if body else actor.client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries], response.json()


FIRST_THREE = ["Other org? no, same org but filtered", "Person 22", "Person 21"]  # of `?dnc=false`


def paged_by_ids(sql: list[str]) -> bool:
    """A page query restricted to the selection's ids, read beforehand or in the same statement
    (contacts.paging: small selections)."""
    return any(re.search(r'"contacts_contact"\."id" (IN \(-?\d|= ANY\()', s) and "ORDER BY" in s for s in sql)


def test_small_filtered_results_are_paged_from_their_ids_not_by_walking_the_sort_index(many):
    for contact in Contact.objects.filter(name__in=["Person 00", "Person 01"]):
        add_tags(contact, ["legacy"])
    sql, body = _statements(many, "get", "/api/v1/contacts?tag=legacy")
    assert paged_by_ids(sql)
    assert [c["name"] for c in body["results"]] == ["Person 01", "Person 00"]
    sql, body = _statements(
        many,
        "post",
        "/api/v1/contacts/search",
        {
            "count": "none",
            "query": {"groups": [{"conditions": [{"field": "tags", "op": "contains", "value": "legacy"}]}]},
        },
    )
    assert paged_by_ids(sql) and len(body["results"]) == 2


def test_unfiltered_pages_keep_the_index_walk(many):
    sql, _ = _statements(many, "get", "/api/v1/contacts?count=none")
    budgets = [s for s in sql if "statement_timeout" in s and "set_config('role'" not in s]  # not the request's own
    assert not paged_by_ids(sql) and not budgets


@pytest.mark.parametrize("endpoint", ["list", "search"])
def test_exact_counts_run_with_count_work_mem_and_only_they_do(many, settings, endpoint):
    from django.db import connection

    settings.COUNT_WORK_MEM = "48MB"
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        before = cursor.fetchone()[0]
    if endpoint == "list":
        sql, body = _statements(many, "get", "/api/v1/contacts?q=person")
    else:
        sql, body = _statements(many, "post", "/api/v1/contacts/search", {"query": {"groups": []}})
    assert body["count"] > 0
    count_at = next(i for i, s in enumerate(sql) if "COUNT(*)" in s)
    assert "set_config('work_mem'" in sql[count_at - 1]
    assert sql[count_at + 1] == "SET LOCAL work_mem TO DEFAULT"
    assert not any("work_mem" in s for s in sql[count_at + 2 :])  # the page query runs at the default
    with connection.cursor() as cursor:
        cursor.execute("SHOW work_mem")
        assert cursor.fetchone()[0] == before


def _show(name):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {name}")
        return cursor.fetchone()[0]


def say_many(self, cap):
    """Selection.first_ids answering "more than `cap`" (ids no contact has: only their number matters)."""
    return list(range(-cap - 1, 0))


def _is_walk(sql: str) -> bool:
    return 'FROM "contacts_contact"' in sql and "LIMIT" in sql and "ORDER BY" in sql and not paged_by_ids([sql])


def _no_time_budget(sql: list[str]) -> bool:
    return not any("set_config('statement_timeout'" in s and "current_setting" in s for s in sql)


def test_beyond_a_few_hundred_matches_without_a_count_a_walk_answers(many, monkeypatch):
    from contacts import paging

    monkeypatch.setattr(paging.Selection, "first_ids", say_many)
    sql, body = _statements(many, "get", "/api/v1/contacts?dnc=false&count=none&limit=3")
    assert [c["name"] for c in body["results"]] == FIRST_THREE
    assert any(_is_walk(s) for s in sql) and not paged_by_ids(sql)
    assert _no_time_budget(sql)


def test_a_few_hundred_matches_without_a_count_are_paged_from_their_ids_without_a_walk(many):
    sql, body = _statements(many, "get", "/api/v1/contacts?dnc=false&count=none&limit=3")
    assert [c["name"] for c in body["results"]] == FIRST_THREE
    assert paged_by_ids(sql) and not any(_is_walk(s) for s in sql)
    assert _no_time_budget(sql)


@pytest.mark.parametrize("count", ["exact", "estimate"])
def test_a_counted_selection_of_a_few_thousand_is_paged_from_its_ids(many, monkeypatch, count):
    from contacts import paging

    monkeypatch.setattr(paging, "FEW", 5)  # the 24 matches of `dnc=false` are "a few thousand"
    sql, body = _statements(many, "get", f"/api/v1/contacts?dnc=false&count={count}&limit=3")
    assert [c["name"] for c in body["results"]] == FIRST_THREE
    assert paged_by_ids(sql) and not any(_is_walk(s) for s in sql)
    monkeypatch.setattr(paging, "SMALL_RESULT", 20)  # now "many": a walk meets its page soon
    sql, body = _statements(many, "get", f"/api/v1/contacts?dnc=false&count={count}&limit=3")
    assert [c["name"] for c in body["results"]] == FIRST_THREE
    assert any(_is_walk(s) for s in sql) and not paged_by_ids(sql)


def same_statements(sql: list[str]) -> list[str]:
    # Savepoint names are numbered; each request's history context has an id of its own.
    sql = [re.sub(r'"s\d+_x\d+"', "SAVEPOINT", s) for s in sql]
    return [re.sub(r"'history\.unit', '\d+'", "'history.unit', ''", s) for s in sql]


def test_the_plan_does_not_depend_on_how_slow_the_database_is(many):
    """The same request on a loaded server runs the same statements: no trial under a time budget."""
    from django.db import connection

    def slowly(execute, sql, params, many_, context):
        execute("SELECT pg_sleep(0.02)", None, many_, context)
        return execute(sql, params, many_, context)

    for url in ("/api/v1/contacts?dnc=false&count=none&limit=3", "/api/v1/contacts?dnc=false&limit=3"):
        quick, _ = _statements(many, "get", url)
        with connection.execute_wrapper(slowly):
            slow, _ = _statements(many, "get", url)
        assert same_statements([s for s in slow if "pg_sleep" not in s]) == same_statements(quick)


def _side_reads(sql: list[str], table: str) -> bool:
    """A statement reading the condition's own rows in list order (contacts.paging._side_page)."""
    return any(f'FROM "{table}"' in s and 'ORDER BY "' + table + '"."created_at" DESC' in s for s in sql)


@pytest.fixture
def labelled(many, carol):
    """Tags and a multi-select on the `many` contacts; one contact has two matching options (it must
    come once), and carol (assigned-only) is assigned a few of the tagged ones."""
    CustomField.objects.create(
        org=many.org, key="labels", name="Labels", data_type="multi_select", options=["a", "b", "c"]
    )
    people = list(Contact.objects.filter(name__startswith="Person").order_by("name"))
    for index, contact in enumerate(people):
        if index % 2:
            add_tags(contact, ["odd"])
        labels = ["a", "b"] if index % 3 == 0 else ["c"]
        response = many.client.patch(f"/api/v1/contacts/{contact.pk}", {"custom": {"labels": labels}}, format="json")
        assert response.status_code == 200
    Contact.objects.filter(pk__in=[people[1].pk, people[5].pk]).update(assigned_to=carol.user)
    return many


def _expected(org, **filters) -> list[int]:
    return list(Contact.objects.filter(org=org, **filters).order_by("-created_at", "-id").values_list("pk", flat=True))


def test_one_tag_is_paged_from_its_own_rows_in_list_order(labelled):
    expected = _expected(labelled.org, pk__in=ContactTag.objects.filter(tag__name="odd").values("contact_id"))
    assert len(expected) == 11
    sql, body = _statements(labelled, "get", "/api/v1/contacts?tag=odd&limit=4")
    assert _side_reads(sql, "contacts_contacttag")
    assert [c["id"] for c in body["results"]] == expected[:4]
    assert walk_get(labelled, "tag=odd&limit=4") == expected  # cursors past created_at ties
    offset_page = labelled.client.get("/api/v1/contacts?tag=odd&limit=4&offset=8").json()["results"]
    assert [c["id"] for c in offset_page] == expected[8:]


def test_one_value_condition_is_paged_from_its_own_rows_each_contact_once(labelled):
    condition = {"field": "custom.labels", "op": "contains_any", "value": ["a", "b"]}
    body = {"query": {"groups": [{"conditions": [condition]}]}}
    expected = _expected(labelled.org, name__in=[f"Person {i:02d}" for i in range(0, 23, 3)])
    sql, page = _statements(labelled, "post", "/api/v1/contacts/search", {**body, "limit": 3})
    assert _side_reads(sql, "contacts_fieldvalue")
    assert [c["id"] for c in page["results"]] == expected[:3]
    assert search_walk(labelled, {**body, "limit": 3}) == expected  # two matching options, one row
    assert page["count"] == len(expected)


@pytest.mark.parametrize(
    "request_",
    [
        ("get", "/api/v1/contacts?tag=odd&ordering=name", None),  # another order
        ("get", "/api/v1/contacts?tag=odd&dnc=false", None),  # a second filter
        (
            "post",
            "/api/v1/contacts/search",
            {
                "q": "person",
                "query": {"groups": [{"conditions": [{"field": "tags", "op": "contains", "value": "odd"}]}]},
            },
        ),  # q with it
    ],
)
def test_other_lists_with_a_tag_are_not_paged_from_its_rows(labelled, request_):
    method, url, body = request_
    sql, _ = _statements(labelled, method, url, body)
    assert not _side_reads(sql, "contacts_contacttag")


def test_an_assigned_only_member_gets_only_their_contacts_for_one_tag(labelled, carol):
    body = carol.client.get("/api/v1/contacts?tag=odd").json()
    assert [c["name"] for c in body["results"]] == ["Person 05", "Person 01"]
    searched = carol.client.post(
        "/api/v1/contacts/search",
        {"query": {"groups": [{"conditions": [{"field": "tags", "op": "contains", "value": "odd"}]}]}},
        format="json",
    ).json()
    assert [c["name"] for c in searched["results"]] == ["Person 05", "Person 01"]


OR_OF_GROUPS = {
    "query": {
        "groups": [
            {"conditions": [{"field": "tags", "op": "contains", "value": "odd"}]},
            {"conditions": [{"field": "custom.labels", "op": "contains_any", "value": ["a"]}]},
        ]
    },
    "count": "none",
}


@pytest.mark.parametrize("sort", [[], [{"field": "name", "direction": "desc"}]])
def test_an_or_of_groups_is_paged_from_each_groups_own_page(labelled, sort):
    odd = ContactTag.objects.filter(tag__name="odd").values("contact_id")
    members = Contact.objects.filter(org=labelled.org).filter(
        Q(pk__in=odd) | Q(name__in=[f"Person {i:02d}" for i in range(0, 23, 3)])
    )
    body = {**OR_OF_GROUPS, "sort": sort, "limit": 4}
    # The reference: the same search with its count known, which pages from the UNION of the ids.
    reference = labelled.client.post("/api/v1/contacts/search", {**body, "count": "exact", "limit": 200}, format="json")
    expected = [c["id"] for c in reference.json()["results"]]
    assert sorted(expected) == sorted(members.values_list("pk", flat=True)) and len(expected) == 15

    sql, page = _statements(labelled, "post", "/api/v1/contacts/search", body)
    assert [c["id"] for c in page["results"]] == expected[:4]
    if not sort:  # in list order each group reads its own tag or value rows
        assert _side_reads(sql, "contacts_contacttag") and _side_reads(sql, "contacts_fieldvalue")
    # Never every match of every group (the ids' UNION); what is read together is each part's first rows.
    assert not any(re.search(r" UNION (?!ALL \()", s) for s in sql)
    assert search_walk(labelled, body) == expected
    offset_page = labelled.client.post("/api/v1/contacts/search", {**body, "offset": 8}, format="json").json()
    assert [c["id"] for c in offset_page["results"]] == expected[8:12]


@pytest.fixture
def common_q(many, monkeypatch):
    """`person` found in more than FEW contacts: a common term, checked per row and through its index."""
    from contacts.search import free_text

    monkeypatch.setattr(free_text, "FEW", 5)
    return many


def _counted_by_the_function(sql: list[str]) -> bool:
    return any("crm_text_match_count" in s for s in sql)


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("get", "/api/v1/contacts?q=person&limit=2", None),
        ("post", "/api/v1/contacts/search", {"q": "person", "limit": 2}),
    ],
)
def test_a_common_q_alone_is_counted_from_its_index(common_q, method, url, body):
    sql, page = _statements(common_q, method, url, body)
    assert page["count"] == 23
    assert _counted_by_the_function(sql)


@pytest.mark.parametrize(
    "method, url, body",
    [
        ("get", "/api/v1/contacts?q=person&dnc=false&limit=2", None),
        (
            "post",
            "/api/v1/contacts/search",
            {"q": "person", "query": {"groups": [{"conditions": [{"field": "dnc", "op": "eq", "value": True}]}]}},
        ),
    ],
)
def test_a_common_q_with_another_filter_counts_both(common_q, method, url, body):
    Contact.objects.filter(name__in=["Person 03", "Person 04"]).update(dnc=True)
    sql, page = _statements(common_q, method, url, body)
    assert page["count"] == (21 if method == "get" else 2)
    assert not _counted_by_the_function(sql)


def test_an_assigned_only_member_counts_only_their_contacts_for_a_common_q(common_q, carol):
    Contact.objects.filter(name__in=["Person 03", "Person 04", "Person 05"]).update(assigned_to=carol.user)
    for method, url, body in [
        ("get", "/api/v1/contacts?q=person", None),
        ("post", "/api/v1/contacts/search", {"q": "person"}),
    ]:
        sql, page = _statements(carol, method, url, body)
        assert page["count"] == 3
        assert not _counted_by_the_function(sql)


def test_a_term_on_a_page_of_the_newest_contacts_is_common_without_a_look_up(alice):
    for index in range(55):
        make_contact(org=alice.org, name=f"Zebra {index:02d}", search_text=f"zebra {index:02d}")
    make_contact(org=alice.org, name="Okapi", search_text="okapi")
    expected = _expected(alice.org, name__startswith="Zebra")

    sql, page = _statements(alice, "get", "/api/v1/contacts?q=zebra&count=none&limit=10")
    assert [c["id"] for c in page["results"]] == expected[:10]
    assert not any("crm_text_matches" in s and "LIMIT 501" in s for s in sql)  # no look-up of every match
    assert alice.client.get("/api/v1/contacts?q=zebra").json()["count"] == 55

    sql, page = _statements(alice, "get", "/api/v1/contacts?q=okapi")
    assert [c["name"] for c in page["results"]] == ["Okapi"]
    assert any("crm_text_matches" in s and "LIMIT 501" in s for s in sql)  # a rare term: its ids, looked up


def test_another_orgs_contacts_never_make_a_term_common_or_count(alice, charlie):
    for index in range(55):
        make_contact(org=charlie.org, name=f"Zebra {index:02d}", search_text=f"zebra {index:02d}")
    mine = make_contact(org=alice.org, name="Zebra mine", search_text="zebra mine")

    sql, page = _statements(alice, "get", "/api/v1/contacts?q=zebra")
    assert [c["id"] for c in page["results"]] == [mine.pk] and page["count"] == 1
    assert any("crm_text_matches" in s and "LIMIT 501" in s for s in sql)  # rare here: looked up
    searched = alice.client.post("/api/v1/contacts/search", {"q": "zebra"}, format="json").json()
    assert searched["count"] == 1 and [c["id"] for c in searched["results"]] == [mine.pk]


@pytest.fixture
def some_blank(many):
    """Half of `many` with an email, phone and assignee; the rest without (NULL in those columns)."""
    for index, contact in enumerate(Contact.objects.filter(org=many.org).order_by("id")):
        if index % 2:
            contact.email, contact.email_key = f"p{index % 7}@example.com", f"p{index}@example.com"
            contact.phone, contact.assigned_to_id = f"+1555000{index % 5:04d}", many.user.id
            contact.save()
    return many


@pytest.mark.parametrize("field", ["email", "phone", "assigned_to", "source", "dnc", "updated_at"])
@pytest.mark.parametrize("direction", ["", "-"])
def test_cursor_walk_over_a_column_with_nulls_loses_no_row(some_blank, field, direction):
    ordering = f"&ordering={direction}{field}"
    everything = [c["id"] for c in some_blank.client.get(f"/api/v1/contacts?limit=200{ordering}").json()["results"]]
    assert len(everything) == 24
    assert walk_get(some_blank, f"limit=4{ordering}") == everything
