"""`GET /contacts/{id}/history`: one entry per transaction from every write path, with actor, source,
job and per-field [before, after]; nothing for a no-op write; scope and paging.

A test runs in one transaction; each request sets its own context (history.context), whose id keeps
its entries apart from the other requests' as separate transactions would.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from knox.models import AuthToken

from contacts.models import Contact, TrashedContact
from contacts.testing import make_contact, make_contacts
from crm.db_security import as_org
from customization.models import CustomField, Tag
from history.context import record_purged, set_change_context
from history.models import ContactChange
from jobs.tests.helpers import run_jobs

pytestmark = pytest.mark.django_db


def history(actor, contact_id, query: str = "") -> dict:
    response = actor.client.get(f"/api/v1/contacts/{contact_id}/history{query}")
    assert response.status_code == 200, response.content
    return response.json()


def entries(actor, contact_id) -> list[dict]:
    return history(actor, contact_id)["results"]


def token_key(actor) -> str:
    return AuthToken.objects.get(user=actor.user).token_key


def by_api(actor) -> dict:
    return {"actor": {"user": actor.user.id, "token": token_key(actor)}, "source": "api", "job": None}


def shape(entry: dict) -> dict:
    return {key: entry[key] for key in ("event", "actor", "source", "job", "changes")}


@pytest.fixture
def plan(org_a):
    return CustomField.objects.create(org=org_a, key="plan", name="Plan", data_type="text")


@pytest.fixture
def colors(org_a):
    return CustomField.objects.create(
        org=org_a, key="colors", name="Colors", data_type="multi_select", options=["Red", "Green", "Blue"]
    )


@pytest.fixture
def ada(org_a):
    return make_contact(
        org_a, name="Ada Lovelace", first_name="Ada", last_name="Lovelace", email="ada@a.test", tags=["vip"]
    )


def test_api_create_is_one_created_entry_with_its_non_empty_values(alice, plan):
    body = {"name": "Ada Lovelace", "email": "ADA@a.test", "tags": ["VIP", "lead"], "custom": {"plan": "pro"}}
    created = alice.client.post("/api/v1/contacts", body, format="json").json()
    (entry,) = entries(alice, created["id"])
    assert shape(entry) == {
        "event": "created",
        **by_api(alice),
        "changes": {
            "first_name": [None, "Ada"], "last_name": [None, "Lovelace"], "name": [None, "Ada Lovelace"],
            "email": [None, "ADA@a.test"], "tags": [[], ["lead", "vip"]], "custom.plan": [None, "pro"],
        },
    }  # fmt: skip


def test_api_patch_records_before_and_after_of_what_changed(alice, bob, ada):
    response = bob.client.patch(f"/api/v1/contacts/{ada.id}", {"company": "Engines", "dnc": True}, format="json")
    assert response.status_code == 200, response.content
    latest = entries(alice, ada.id)[0]
    assert shape(latest) == {
        "event": "updated",
        **by_api(bob),
        "changes": {"company": ["", "Engines"], "dnc": [False, True]},
    }


def test_a_no_op_patch_records_nothing(alice, ada):
    before = entries(alice, ada.id)
    assert alice.client.patch(f"/api/v1/contacts/{ada.id}", {"email": "ada@a.test"}, format="json").status_code == 200
    assert entries(alice, ada.id) == before


def test_tags_endpoints_record_sorted_names_before_and_after(alice, ada):
    alice.client.post(f"/api/v1/contacts/{ada.id}/tags", {"tags": ["Lead", "vip"]}, format="json")
    alice.client.delete(f"/api/v1/contacts/{ada.id}/tags/vip")
    removed, added = entries(alice, ada.id)[:2]
    assert shape(added) == {"event": "updated", **by_api(alice), "changes": {"tags": [["vip"], ["lead", "vip"]]}}
    assert removed["changes"] == {"tags": [["lead", "vip"], ["lead"]]}


def test_custom_value_endpoint_records_canonical_values(alice, ada, plan, colors):
    url = f"/api/v1/contacts/{ada.id}/custom"
    assert alice.client.put(f"{url}/colors", {"value": ["blue", "red"]}, format="json").status_code == 200
    assert alice.client.put(f"{url}/plan", {"value": "pro"}, format="json").status_code == 200
    assert alice.client.put(f"{url}/plan", {"value": "pro"}, format="json").status_code == 200  # the same: no entry
    assert alice.client.put(f"{url}/colors", {"value": None}, format="json").status_code == 200
    cleared, plan_set, colors_set = [entry["changes"] for entry in entries(alice, ada.id)[:3]]
    assert colors_set == {"custom.colors": [None, ["Blue", "Red"]]}
    assert plan_set == {"custom.plan": [None, "pro"]}
    assert cleared == {"custom.colors": [["Blue", "Red"], None]}
    assert entries(alice, ada.id)[3]["event"] == "created"


def test_sync_import_records_created_and_updated_entries_as_an_import(alice, ada):
    body = {"contacts": [{"email": "ada@a.test", "company": "Engines"}, {"name": "Grace Hopper", "tags": ["navy"]}]}
    response = alice.client.post("/api/v1/contacts/import", body, format="json")
    assert response.status_code == 200, response.content
    grace = Contact.objects.for_org(alice.org.id).get(name="Grace Hopper")
    actor = by_api(alice)["actor"]
    assert shape(entries(alice, ada.id)[0]) == {
        "event": "updated", "actor": actor, "source": "import", "job": None, "changes": {"company": ["", "Engines"]}
    }  # fmt: skip
    assert shape(entries(alice, grace.id)[0]) == {
        "event": "created", "actor": actor, "source": "import", "job": None,
        "changes": {"first_name": [None, "Grace"], "last_name": [None, "Hopper"], "name": [None, "Grace Hopper"],
                    "tags": [[], ["navy"]]},
    }  # fmt: skip


def test_async_import_job_records_the_job_and_its_creator(alice, ada):
    text = "email,company\nada@a.test,Engines\nnew@a.test,Initech\n"
    response = alice.client.generic(
        "POST", "/api/v1/contacts/import?async=true", text.encode(), content_type="text/csv"
    )
    assert response.status_code == 202, response.content
    job_id = response.json()["id"]
    run_jobs()
    created = Contact.objects.for_org(alice.org.id).get(email="new@a.test")
    updated = entries(alice, ada.id)[0]
    assert shape(updated) == {
        "event": "updated", "actor": {"user": alice.user.id, "token": None}, "source": "import", "job": job_id,
        "changes": {"company": ["", "Engines"]},
    }  # fmt: skip
    assert entries(alice, created.id)[0]["event"] == "created"
    assert entries(alice, created.id)[0]["job"] == job_id


def test_bulk_action_and_its_undo_are_recorded_with_the_job(alice, ada):
    body = {"ids": [ada.id], "expected_count": 1, "action": {"set": {"company": "Engines"}}}
    response = alice.client.post("/api/v1/contacts/bulk", body, format="json")
    assert response.status_code == 202, response.content
    job_id = response.json()["job"]["id"]
    run_jobs()
    bulk = entries(alice, ada.id)[0]
    assert shape(bulk) == {
        "event": "updated", "actor": {"user": alice.user.id, "token": None}, "source": "bulk", "job": job_id,
        "changes": {"company": ["", "Engines"]},
    }  # fmt: skip
    assert alice.client.post(f"/api/v1/jobs/{job_id}/undo").status_code == 202
    run_jobs()
    undo = entries(alice, ada.id)[0]
    assert (undo["source"], undo["changes"]) == ("bulk", {"company": ["Engines", ""]})
    assert undo["job"] not in (None, job_id)


def test_admin_change_form_is_recorded_with_the_staff_user(ada, alice):
    staff = get_user_model().objects.create_superuser("root", "root@example.test", "pw-for-tests")
    client = Client()
    client.force_login(staff)
    form = {
        "org": ada.org_id, "first_name": "Ada", "last_name": "Lovelace", "name": "Ada Lovelace",
        "email": "ada@a.test", "phone": "", "company": "Engines", "source": "", "notes": "",
        "tags": "vip", "custom": "{}", "assigned_to": "",
        "opportunities-TOTAL_FORMS": "0", "opportunities-INITIAL_FORMS": "0",
        "opportunities-MIN_NUM_FORMS": "0", "opportunities-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    response = client.post(f"/admin/contacts/contact/{ada.id}/change/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert shape(entries(alice, ada.id)[0]) == {
        "event": "updated", "actor": {"user": staff.id, "token": None}, "source": "admin", "job": None,
        "changes": {"company": ["", "Engines"]},
    }  # fmt: skip


def test_statements_of_one_transaction_make_one_entry(alice, ada, plan):
    with transaction.atomic(), as_org(alice.org.id):
        set_change_context(source="api", user_id=alice.user.id)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE contacts_contact SET company = 'One' WHERE id = %s", [ada.id])
            cursor.execute("UPDATE contacts_contact SET company = 'Two', notes = 'x' WHERE id = %s", [ada.id])
            cursor.execute("UPDATE contacts_contact SET notes = '' WHERE id = %s", [ada.id])  # back as it was
            cursor.execute(
                "INSERT INTO contacts_fieldvalue (org_id, contact_id, field_id, position, value, created_at)"
                " VALUES (%s, %s, %s, 0, '\"pro\"', now())",
                [alice.org.id, ada.id, plan.id],
            )
    latest, created = entries(alice, ada.id)
    assert latest["changes"] == {"company": ["", "Two"], "custom.plan": [None, "pro"]}
    assert created["event"] == "created"


def test_a_transaction_that_puts_everything_back_leaves_no_entry(alice, ada):
    with transaction.atomic(), as_org(alice.org.id):
        set_change_context(source="api", user_id=alice.user.id)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE contacts_contact SET company = 'One' WHERE id = %s", [ada.id])
            cursor.execute("UPDATE contacts_contact SET company = '' WHERE id = %s", [ada.id])
    assert [entry["event"] for entry in entries(alice, ada.id)] == ["created"]


def test_without_a_context_the_source_is_system(alice, ada):
    (created,) = entries(alice, ada.id)  # made by a test helper: no request, no job
    assert shape(created) == {
        "event": "created", "actor": {"user": None, "token": None}, "source": "system", "job": None,
        "changes": {"first_name": [None, "Ada"], "last_name": [None, "Lovelace"], "name": [None, "Ada Lovelace"],
                    "email": [None, "ada@a.test"], "tags": [[], ["vip"]]},
    }  # fmt: skip


def test_another_orgs_contact_is_404_and_its_history_never_shown(alice, charlie, ada):
    response = charlie.client.get(f"/api/v1/contacts/{ada.id}/history")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert b"Lovelace" not in response.content
    theirs = make_contact(charlie.org, name="Theirs")
    assert alice.client.get(f"/api/v1/contacts/{theirs.id}/history").status_code == 404
    assert ContactChange.objects.filter(contact_id=theirs.id).values_list("org_id", flat=True).get() == charlie.org.id


def test_an_assigned_only_member_sees_the_history_of_their_contacts_only(carol, ada):
    assert carol.client.get(f"/api/v1/contacts/{ada.id}/history").status_code == 404
    mine = make_contact(carol.org, name="Mine", assigned_to=carol.user)
    assert [entry["event"] for entry in entries(carol, mine.id)] == ["created"]


def test_a_trashed_contact_keeps_its_history_visible(alice, ada):
    with as_org(alice.org.id):
        set_change_context(source="api", user_id=alice.user.id)
        trash_row = Contact.objects.filter(pk=ada.id).values("org_id", "name", "email", "assigned_to_id").get()
        TrashedContact.objects.create(contact_id=ada.id, snapshot={}, **trash_row)
        Contact.objects.filter(pk=ada.id).delete()  # its tag rows cascade: no entry of their own
    trashed, created = entries(alice, ada.id)
    assert (trashed["event"], trashed["changes"]) == ("trashed", {})


def test_pages_by_cursor_newest_first(alice, ada):
    for index in range(5):
        alice.client.patch(f"/api/v1/contacts/{ada.id}", {"company": f"C{index}"}, format="json")
    first = history(alice, ada.id, "?limit=2")
    assert [e["changes"]["company"][1] for e in first["results"]] == ["C4", "C3"]
    second = history(alice, ada.id, f"?limit=2&cursor={first['next_cursor']}")
    third = history(alice, ada.id, f"?limit=2&cursor={second['next_cursor']}")
    assert [e["changes"]["company"][1] for e in second["results"]] == ["C2", "C1"]
    assert [e["event"] for e in third["results"]] == ["updated", "created"]
    assert history(alice, ada.id, f"?limit=2&cursor={third['next_cursor']}")["results"] == []
    assert "cursor=" in first["next"] and third["next_cursor"] is not None


@pytest.mark.parametrize(
    ("query", "status", "attr"),
    [
        ("?cursor=nope", 422, "cursor"),
        ("?limit=0", 422, "limit"),
        ("?limit=201", 422, "limit"),
        ("?limit=x", 422, "limit"),
    ],
)
def test_invalid_paging_is_a_problem_not_a_500(alice, ada, query, status, attr):
    response = alice.client.get(f"/api/v1/contacts/{ada.id}/history{query}")
    assert response.status_code == status, response.content
    assert response.json()["errors"][0]["attr"] == attr


def test_bulk_inserted_contacts_get_one_entry_each(alice):
    contacts = make_contacts(alice.org, [{"name": f"P{i}", "tags": ["t"]} for i in range(3)])
    for contact in contacts:
        (entry,) = entries(alice, contact.id)
        assert entry["changes"]["tags"] == [[], ["t"]]


def test_bulk_add_tags_and_set_custom_value_are_recorded_per_contact(alice, ada, plan):
    for action, changes in [
        ({"add_tags": ["Lead"]}, {"tags": [["vip"], ["lead", "vip"]]}),
        ({"set": {"custom.plan": "pro"}}, {"custom.plan": [None, "pro"]}),
    ]:
        body = {"ids": [ada.id], "expected_count": 1, "action": action}
        response = alice.client.post("/api/v1/contacts/bulk", body, format="json")
        assert response.status_code == 202, response.content
        run_jobs()
        latest = entries(alice, ada.id)[0]
        assert (latest["source"], latest["job"], latest["changes"]) == ("bulk", response.json()["job"]["id"], changes)


def test_deleting_a_tag_from_the_catalog_records_nothing_per_contact(alice, ada):
    before = entries(alice, ada.id)
    vip = Tag.objects.for_org(alice.org.id).get(name="vip")
    assert alice.client.delete(f"/api/v1/tags/{vip.id}").status_code == 204
    assert entries(alice, ada.id) == before


def test_a_purge_is_recorded_by_record_purged_with_the_context(alice, ada):
    with as_org(alice.org.id):
        set_change_context(source="api", user_id=alice.user.id)
        record_purged([(alice.org.id, ada.id)])
    latest = entries(alice, ada.id)[0]
    assert (latest["event"], latest["source"], latest["actor"]["user"], latest["changes"]) == (
        "purged",
        "api",
        alice.user.id,
        {},
    )
