from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact, attach_tags_and_custom
from contacts.testing import make_contacts as make_rows
from customization.models import Tag

pytestmark = pytest.mark.django_db


def make_contacts(org, count, tags, **extra):
    return make_rows(org, [{"first_name": f"C{i}", "tags": list(tags), **extra} for i in range(count)])


def test_anyone_can_add_a_tag_and_its_name_is_normalized(bob):
    response = bob.client.post("/api/v1/tags", {"name": "  Replied   Interested "}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "replied interested"
    assert set(body) == {"id", "name", "created_at"}


def test_duplicate_tag_is_409_with_the_existing_id(alice):
    first = alice.client.post("/api/v1/tags", {"name": "vip"}, format="json").json()
    response = alice.client.post("/api/v1/tags", {"name": "VIP "}, format="json")
    assert response.status_code == 409
    body = response.json()
    assert body["existing_id"] == first["id"]
    assert body["errors"][0]["attr"] == "name"


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, 5, None, "a\x00b"])
def test_invalid_tag_names_are_422_on_name(alice, name):
    response = alice.client.post("/api/v1/tags", {"name": name}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "name"


@pytest.mark.parametrize("name", [" " + "x" * 64, "ß" * 64])
def test_the_64_character_cap_holds_as_given_and_once_normalized(alice, name):
    """As the schema says (`maxLength` 64): 65 characters with a space, or 64 that fold to 128."""
    response = alice.client.post("/api/v1/tags", {"name": name}, format="json")
    assert response.status_code == 422 and response.json()["errors"][0]["code"] == "invalid_tag"
    contact = alice.client.post("/api/v1/contacts", {"name": "Ada", "tags": [name]}, format="json")
    assert contact.status_code == 422 and contact.json()["errors"][0]["attr"] == "tags.0"


def test_a_name_of_64_characters_with_spaces_around_is_its_trimmed_self(alice):
    response = alice.client.post("/api/v1/tags", {"name": "  " + "X" * 60 + "  "}, format="json")
    assert response.status_code == 201 and response.json()["name"] == "x" * 60


def test_list_is_paginated_ordered_by_name_and_filterable(alice):
    for name in ("zeta", "alpha", "beta"):
        Tag.objects.create(org=alice.org, name=name)
    body = alice.client.get("/api/v1/tags?limit=2").json()
    assert body["count"] == 3
    assert [t["name"] for t in body["results"]] == ["alpha", "beta"]
    assert body["next"] is not None
    assert [t["name"] for t in alice.client.get("/api/v1/tags?q=ET").json()["results"]] == ["beta", "zeta"]


def tag_sets(org) -> Counter:
    """How many of the org's contacts carry each set of tags (sorted tuples)."""
    return Counter(tuple(c.tags) for c in attach_tags_and_custom(list(Contact.objects.for_org(org.id))))


def test_with_counts_counts_contacts_in_one_grouped_query(alice):
    for name in ("vip", "lead", "unused"):
        Tag.objects.create(org=alice.org, name=name)
    make_contacts(alice.org, 3, ["vip", "lead"])
    make_contacts(alice.org, 2, ["lead"])
    with CaptureQueriesContext(connection) as queries:
        body = alice.client.get("/api/v1/tags?with_counts=true").json()
    counts = {t["name"]: t["contact_count"] for t in body["results"]}
    assert counts == {"lead": 5, "unused": 0, "vip": 3}
    assert sum("GROUP BY" in q["sql"] for q in queries.captured_queries) == 1


def test_counts_only_include_contacts_the_caller_can_see(alice, carol):
    Tag.objects.create(org=alice.org, name="vip")
    make_contacts(alice.org, 4, ["vip"])
    make_contacts(alice.org, 1, ["vip"], assigned_to=carol.user)
    body = carol.client.get("/api/v1/tags?with_counts=1").json()
    assert body["results"][0]["contact_count"] == 1


def test_bad_with_counts_is_422(alice):
    response = alice.client.get("/api/v1/tags?with_counts=maybe")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "with_counts"


def test_renaming_a_tag_renames_it_on_every_contact(alice):
    make_contacts(alice.org, 50, ["old", "keep"])
    make_contacts(alice.org, 5, ["keep"])
    tag = Tag.objects.get(org=alice.org, name="old")
    response = alice.client.patch(f"/api/v1/tags/{tag.id}", {"name": "New"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "new"
    assert tag_sets(alice.org) == {("keep", "new"): 50, ("keep",): 5}
    assert sorted(Tag.objects.for_org(alice.org.id).values_list("name", flat=True)) == ["keep", "new"]


def test_a_rename_writes_one_catalog_row_and_no_contact(alice):
    """Contacts refer to the tag by id: a rename never rewrites them (so it cannot undo their edits)."""
    make_contacts(alice.org, 20, ["old"])
    tag = Tag.objects.get(org=alice.org, name="old")
    with CaptureQueriesContext(connection) as queries:
        alice.client.patch(f"/api/v1/tags/{tag.id}", {"name": "new"}, format="json")
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(("UPDATE", "INSERT", "DELETE"))]
    assert [w.split()[1] for w in writes] == ['"customization_tag"']


def test_rename_onto_an_existing_tag_is_409_and_changes_nothing(alice):
    old = Tag.objects.create(org=alice.org, name="old")
    taken = Tag.objects.create(org=alice.org, name="taken")
    make_contacts(alice.org, 2, ["old"])
    response = alice.client.patch(f"/api/v1/tags/{old.id}", {"name": "TAKEN"}, format="json")
    assert response.status_code == 409
    assert response.json()["existing_id"] == taken.id
    assert tag_sets(alice.org) == {("old",): 2}


def test_deleting_a_tag_removes_it_from_every_contact(alice):
    make_contacts(alice.org, 50, ["a", "gone", "b"])
    tag = Tag.objects.get(org=alice.org, name="gone")
    response = alice.client.delete(f"/api/v1/tags/{tag.id}")
    assert response.status_code == 204
    assert tag_sets(alice.org) == {("a", "b"): 50}
    assert not Tag.objects.filter(pk=tag.pk).exists()


def test_tag_changes_stay_inside_the_org(alice, charlie):
    tag = Tag.objects.create(org=alice.org, name="shared")
    make_contacts(charlie.org, 3, ["shared"])
    alice.client.patch(f"/api/v1/tags/{tag.id}", {"name": "renamed"}, format="json")
    assert tag_sets(charlie.org) == {("shared",): 3}
    alice.client.delete(f"/api/v1/tags/{tag.id}")
    assert tag_sets(charlie.org) == {("shared",): 3}


@pytest.mark.parametrize("actor", ["bob", "carol"])
def test_members_cannot_rename_or_delete_tags(request, alice, actor):
    member = request.getfixturevalue(actor)
    make_contacts(alice.org, 2, ["vip"])
    tag = Tag.objects.get(org=alice.org, name="vip")
    assert member.client.patch(f"/api/v1/tags/{tag.id}", {"name": "x"}, format="json").status_code == 403
    assert member.client.delete(f"/api/v1/tags/{tag.id}").status_code == 403
    tag.refresh_from_db()
    assert tag.name == "vip"
    assert tag_sets(alice.org) == {("vip",): 2}


def test_other_org_sees_nothing_and_changes_nothing(alice, charlie):
    tag = Tag.objects.create(org=alice.org, name="vip")
    assert charlie.client.get("/api/v1/tags").json()["count"] == 0
    assert charlie.client.get(f"/api/v1/tags/{tag.id}").status_code == 404
    assert charlie.client.patch(f"/api/v1/tags/{tag.id}", {"name": "x"}, format="json").status_code == 404
    assert charlie.client.delete(f"/api/v1/tags/{tag.id}").status_code == 404
    tag.refresh_from_db()
    assert tag.name == "vip"
    # the same name in another org is no conflict
    assert charlie.client.post("/api/v1/tags", {"name": "vip"}, format="json").status_code == 201


def test_unknown_tag_id_is_404(alice):
    assert alice.client.patch("/api/v1/tags/abc", {"name": "x"}, format="json").status_code == 404
    assert alice.client.delete("/api/v1/tags/999999").status_code == 404


def test_nul_in_the_query_is_422(alice):
    response = alice.client.get("/api/v1/tags?q=a%00b")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "q"
