"""The `view` pseudo-field: `in` / `not_in` a list of saved view ids, nested views, and the 422s
for cycles, depth, and ids that are unknown or another org's (told apart by nothing)."""

from __future__ import annotations

import pytest

from contacts.models import Contact, SmartListView
from contacts.search import SearchCompiler
from contacts.testing import make_contact
from crm.db_security import as_org
from crm.errors import InvalidInput
from crm.limits import MAX_VIEW_DEPTH
from customization.models import CustomField

pytestmark = pytest.mark.django_db


def cond(field, op, value=...):
    return {"field": field, "op": op} | ({} if value is ... else {"value": value})


def query(*conditions) -> dict:
    return {"groups": [{"conditions": list(conditions)}]}


def in_views(*views) -> dict:
    return cond("view", "in", [v if isinstance(v, int) else v.id for v in views])


def not_in_views(*views) -> dict:
    return cond("view", "not_in", [v if isinstance(v, int) else v.id for v in views])


# --- at compiler level ------------------------------------------------------------------------


@pytest.fixture
def views(alice, carol):
    org = alice.org
    CustomField.objects.create(org=org, key="score", name="Score", data_type="number")
    make_contact(org=org, name="Ann", first_name="Ann", company="Acme", tags=["vip"], assigned_to=carol.user)
    make_contact(org=org, name="Ben", first_name="Ben", company="Globex", tags=["vip"], custom={"score": 5})
    make_contact(org=org, name="Cat", first_name="Cat", company="Acme", dnc=True, assigned_to=carol.user)
    make_contact(org=org, name="Dan", first_name="Dan")

    def view(name, *conditions, q=""):
        return SmartListView.objects.create(org=org, name=name, query=query(*conditions) if conditions else {}, q=q)

    acme = view("Acme", cond("company", "eq", "acme"))
    vip = view("VIP", cond("tags", "contains", "vip"))
    both = view("Acme VIPs", in_views(acme), in_views(vip))
    rest = view("Not Acme VIPs", not_in_views(both))
    return {
        "acme": acme,
        "vip": vip,
        "both": both,
        "rest": rest,
        "globex": view("Globex by q", q="globex"),
        "everyone": view("Everyone"),
        "scored": view("Scored", cond("custom.score", "gt", 1)),
    }


def matches(org, *conditions) -> set[str]:
    plan = SearchCompiler.for_org(org).compile_request({"query": query(*conditions)})
    with as_org(org.id):  # as a request runs it (a view's `q` reads the org's haystacks)
        return {c.first_name for c in plan.filter(Contact.objects.for_org(org.id))}


def errors_of(org, *conditions) -> list[tuple[str, str, str]]:
    with pytest.raises(InvalidInput) as exc:
        SearchCompiler.for_org(org).compile_request({"query": query(*conditions)})
    return [(e.attr, e.code, e.detail) for e in exc.value.field_errors]


@pytest.mark.parametrize(
    ("op", "names", "expected"),
    [
        ("in", ["acme"], {"Ann", "Cat"}),
        ("in", ["acme", "vip"], {"Ann", "Ben", "Cat"}),
        ("not_in", ["acme"], {"Ben", "Dan"}),
        ("not_in", ["acme", "vip"], {"Dan"}),
        ("in", ["both"], {"Ann"}),  # a view of views
        ("in", ["rest"], {"Ben", "Cat", "Dan"}),  # three deep, with not_in inside
        ("not_in", ["rest"], {"Ann"}),
        ("in", ["globex"], {"Ben"}),  # a view's q counts
        ("in", ["everyone"], {"Ann", "Ben", "Cat", "Dan"}),
        ("not_in", ["everyone"], set()),
        ("in", ["everyone", "acme"], {"Ann", "Ben", "Cat", "Dan"}),
        ("in", ["scored"], {"Ben"}),
    ],
)
def test_membership_is_the_views_query_and_q(alice, views, op, names, expected):
    assert matches(alice.org, cond("view", op, [views[name].id for name in names])) == expected


def test_membership_combines_with_other_conditions(alice, views):
    assert matches(alice.org, in_views(views["acme"]), cond("dnc", "eq", False)) == {"Ann"}


def test_a_view_applied_with_compile_view_may_contain_views(alice, views):
    plan = SearchCompiler.for_org(alice.org).compile_view(views["rest"])
    assert {c.first_name for c in plan.filter(Contact.objects.for_org(alice.org.id))} == {"Ben", "Cat", "Dan"}


def test_views_naming_each_other_are_a_cycle_named_on_the_condition(alice, views):
    a = SmartListView.objects.create(org=alice.org, name="A")
    b = SmartListView.objects.create(org=alice.org, name="B", query=query(in_views(a)))
    SmartListView.objects.filter(pk=a.pk).update(query=query(cond("dnc", "eq", False), in_views(b)))
    [(attr, code, detail)] = errors_of(alice.org, cond("name", "eq", "x"), in_views(views["acme"], a))
    assert (attr, code) == ("query.groups.0.conditions.1.value.1", "view_cycle")
    assert f"'A' (id {a.pk}) → 'B' (id {b.pk}) → 'A' (id {a.pk})" in detail
    SmartListView.objects.filter(pk=a.pk).update(query=query(not_in_views(a)))
    [(attr, code, detail)] = errors_of(alice.org, not_in_views(a))
    assert (attr, code) == ("query.groups.0.conditions.0.value.0", "view_cycle") and "'A'" in detail
    with pytest.raises(InvalidInput) as exc:
        SearchCompiler.for_org(alice.org).compile_view(SmartListView.objects.get(pk=a.pk))
    assert exc.value.field_errors[0].code == "view_cycle"


def test_views_nest_at_most_max_depth(alice, views):
    chain = [views["acme"]]
    for level in range(MAX_VIEW_DEPTH):
        chain.append(SmartListView.objects.create(org=alice.org, name=f"L{level}", query=query(in_views(chain[-1]))))
    assert matches(alice.org, in_views(chain[-2])) == {"Ann", "Cat"}  # MAX_VIEW_DEPTH views, one in the other
    [(attr, code, detail)] = errors_of(alice.org, in_views(chain[-1]))
    assert (attr, code) == ("query.groups.0.conditions.0.value.0", "view_too_deep")
    assert f"at most {MAX_VIEW_DEPTH} deep" in detail


def test_unknown_and_another_orgs_view_ids_read_the_same(alice, charlie, views):
    theirs = SmartListView.objects.create(org=charlie.org, name="Charlie's")
    unknown = errors_of(alice.org, in_views(theirs.pk + 1000))
    foreign = errors_of(alice.org, in_views(theirs))
    assert [(code, detail) for _, code, detail in foreign] == [(code, detail) for _, code, detail in unknown]
    assert foreign[0][:2] == ("query.groups.0.conditions.0.value.0", "unknown_view")


def test_a_view_that_cannot_be_applied_is_named_from_the_outside(alice, views):
    CustomField.objects.filter(org=alice.org, key="score").delete()
    outer = SmartListView.objects.create(org=alice.org, name="Outer", query=query(in_views(views["scored"])))
    [(attr, code, detail)] = errors_of(alice.org, in_views(outer))
    assert (attr, code) == ("query.groups.0.conditions.0.value.0", "invalid_view")
    assert "'Scored'" in detail and "custom.score" in detail
    dangling = SmartListView.objects.create(org=alice.org, name="Dangling", query=query(in_views(999_999_999)))
    [(_, code, detail)] = errors_of(alice.org, in_views(dangling))
    assert code == "invalid_view" and "'Dangling'" in detail


def test_view_is_filter_only(alice, views):
    with pytest.raises(InvalidInput) as exc:
        SearchCompiler.for_org(alice.org).compile_request({"sort": [{"field": "view"}]})
    assert exc.value.field_errors[0].code == "not_sortable"


# --- through HTTP -----------------------------------------------------------------------------

SEARCH = "/api/v1/contacts/search"
VIEWS = "/api/v1/contacts/views"


def search(actor, *conditions):
    return actor.client.post(SEARCH, {"query": query(*conditions)}, format="json")


def names(response) -> set[str]:
    assert response.status_code == 200, response.content
    return {c["name"] for c in response.json()["results"]}


def put(actor, views):
    return actor.client.put(VIEWS, {"views": views}, format="json")


@pytest.fixture
def saved(alice, views):
    """Acme and VIP saved through PUT, then a view of both referring to them by id."""
    SmartListView.objects.filter(org=alice.org).delete()
    first = put(
        alice,
        [
            {"name": "Acme", "query": query(cond("company", "eq", "acme"))},
            {"name": "VIP", "query": query(cond("tags", "contains", "vip"))},
        ],
    )
    acme, vip = first.json()["views"]
    both = {"name": "Acme VIPs", "query": query(in_views(acme["id"]), in_views(vip["id"]))}
    response = put(alice, [acme, vip, both])
    assert response.status_code == 200, response.content
    return {view["name"]: view for view in response.json()["views"]}


def test_search_by_view_membership(alice, saved):
    acme, vip, both = saved["Acme"]["id"], saved["VIP"]["id"], saved["Acme VIPs"]["id"]
    assert names(search(alice, in_views(acme))) == {"Ann", "Cat"}
    assert names(search(alice, not_in_views(acme))) == {"Ben", "Dan"}
    assert names(search(alice, in_views(both))) == {"Ann"}
    assert names(search(alice, not_in_views(both, vip))) == {"Cat", "Dan"}
    response = alice.client.get("/api/v1/contacts", {"view": both})
    assert [c["name"] for c in response.json()["results"]] == ["Ann"]


def test_membership_only_narrows_an_assigned_only_member(carol, saved):
    assert names(search(carol, in_views(saved["Acme"]["id"]))) == {"Ann", "Cat"}  # both hers
    assert names(search(carol, in_views(saved["VIP"]["id"]))) == {"Ann"}  # Ben is VIP but not hers
    assert names(search(carol, not_in_views(saved["Acme VIPs"]["id"]))) == {"Cat"}


def test_a_cycle_is_422_on_search(alice, saved):
    acme = SmartListView.objects.get(pk=saved["Acme"]["id"])  # made cyclic behind the API's back (the admin)
    acme.query = query(not_in_views(saved["Acme VIPs"]["id"]))
    acme.save()
    response = search(alice, in_views(saved["Acme VIPs"]["id"]))
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    [error] = response.json()["errors"]
    assert (error["attr"], error["code"]) == ("query.groups.0.conditions.0.value.0", "view_cycle")
    assert "'Acme VIPs'" in error["detail"] and "'Acme'" in error["detail"]


def test_a_cycle_is_422_on_saving_and_nothing_changes(alice, saved):
    before = alice.client.get(VIEWS).json()
    acme, vip, both = saved["Acme"], saved["VIP"], saved["Acme VIPs"]
    response = put(alice, [acme | {"query": query(in_views(both["id"]))}, vip, both])
    assert response.status_code == 422
    errors = {(e["attr"], e["code"]) for e in response.json()["errors"]}
    assert ("views.0.query.groups.0.conditions.0.value.0", "view_cycle") in errors
    assert ("views.2.query.groups.0.conditions.0.value.0", "view_cycle") in errors
    response = put(alice, [acme, vip | {"query": query(in_views(vip["id"]))}, both])
    assert ("views.1.query.groups.0.conditions.0.value.0", "view_cycle") in {
        (e["attr"], e["code"]) for e in response.json()["errors"]
    }
    assert alice.client.get(VIEWS).json() == before


def test_a_view_may_refer_only_to_views_the_same_put_keeps(alice, charlie, saved):
    acme, vip, both = saved["Acme"], saved["VIP"], saved["Acme VIPs"]
    response = put(alice, [vip, both])  # deletes Acme, which Acme VIPs names
    assert response.status_code == 422
    dropped = response.json()["errors"]
    assert [(e["attr"], e["code"]) for e in dropped] == [
        ("views.1.query.groups.0.conditions.0.value.0", "unknown_view")
    ]
    theirs = put(charlie, [{"name": "Charlie's"}]).json()["views"][0]["id"]
    foreign = put(alice, [acme, vip, both, {"name": "Peek", "query": query(in_views(theirs))}]).json()["errors"]
    unknown = put(alice, [acme, vip, both, {"name": "Peek", "query": query(in_views(theirs + 1000))}]).json()["errors"]
    assert foreign == unknown and foreign[0]["detail"] == dropped[0]["detail"]
    assert put(alice, [vip, both | {"query": query(in_views(vip["id"]))}]).status_code == 200  # both changes at once


def test_unknown_and_another_orgs_view_ids_are_the_same_422_on_search(alice, charlie, saved):
    theirs = put(charlie, [{"name": "Charlie's", "query": query(cond("company", "eq", "acme"))}]).json()["views"][0]
    foreign = search(alice, in_views(theirs["id"]))
    unknown = search(alice, in_views(theirs["id"] + 1000))
    assert foreign.status_code == unknown.status_code == 422
    assert foreign.json() == unknown.json()
    assert foreign.json()["errors"][0]["code"] == "unknown_view"
    assert names(search(charlie, in_views(theirs["id"]))) == set()  # Charlie's own view, none of org A's contacts


def test_the_field_catalog_lists_view_with_its_operators(alice, saved):
    fields = {f["field"]: f for f in alice.client.get("/api/v1/contacts/fields").json()["fields"]}
    assert fields["view"] == {
        "field": "view",
        "label": "Saved view",
        "type": "view",
        "kind": "view",
        "operators": ["in", "not_in"],
        "sortable": False,
    }
    response = put(alice, [saved["Acme"] | {"columns": ["name", "view"]}, saved["VIP"], saved["Acme VIPs"]])
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "views.0.columns.1"
