"""The trash (DESIGN §4 "Nothing is lost"): DELETE moves a contact out of every read path, with its
tags, custom values and opportunities; restore brings it back whole; purge deletes it for good."""

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from contacts import trash
from contacts.models import Contact, Opportunity, TrashedContact
from contacts.tasks import purge_trash
from crm.db_security import rls_bypass
from customization.models import CustomField
from history.models import ContactChange

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts"


def create(actor, **body):
    response = actor.client.post(URL, body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def ada(alice):
    CustomField.objects.create(org=alice.org, key="tier", name="Tier", data_type="text")
    contact = create(
        alice, name="Ada Lovelace", email="ada@example.com", phone="+14155552671", company="Engines",
        tags=["vip", "engineer"], custom={"tier": "gold"},
    )  # fmt: skip
    response = alice.client.post(
        "/api/v1/opportunities", {"contact": contact["id"], "name": "Annual plan", "value": "1500.00"}, format="json"
    )
    assert response.status_code == 201, response.json()
    return contact


def delete(actor, contact_id):
    response = actor.client.delete(f"{URL}/{contact_id}")
    assert response.status_code == 204, response.content
    return response


def test_a_deleted_contact_leaves_every_read_path(alice, ada):
    other = create(alice, name="Grace", tags=["vip"])
    delete(alice, ada["id"])
    assert alice.client.get(f"{URL}/{ada['id']}").status_code == 404
    listed = alice.client.get(URL).json()
    assert [c["id"] for c in listed["results"]] == [other["id"]] and listed["count"] == 1
    search = alice.client.post(f"{URL}/search", {"query": {}, "q": "ada"}, format="json").json()
    assert search["results"] == [] and search["count"] == 0
    by_tag = alice.client.get(URL, {"tag": "engineer"}).json()
    assert by_tag["count"] == 0
    tags = {t["name"]: t for t in alice.client.get("/api/v1/tags", {"with_counts": "true"}).json()["results"]}
    assert tags["vip"]["contact_count"] == 1
    export = alice.client.post(f"{URL}/export", {"query": {}, "columns": ["email"]}, format="json")
    assert b"ada@example.com" not in b"".join(export.streaming_content)
    assert alice.client.get("/api/v1/opportunities").json()["count"] == 0


def test_the_trash_lists_it_with_who_deleted_it(alice, bob, ada):
    delete(bob, ada["id"])
    listed = alice.client.get(f"{URL}/trash").json()
    assert listed["count"] == 1
    (entry,) = listed["results"]
    assert entry["id"] == ada["id"] and entry["email"] == "ada@example.com" and entry["name"] == "Ada Lovelace"
    assert entry["deleted_by"] == bob.user.pk and entry["tag_count"] == 2 and entry["opportunity_count"] == 1
    deleted_at = dt.datetime.fromisoformat(entry["deleted_at"].replace("Z", "+00:00"))
    purge_at = dt.datetime.fromisoformat(entry["purge_at"].replace("Z", "+00:00"))
    assert purge_at - deleted_at == dt.timedelta(days=30)


def test_restore_brings_it_back_whole_under_its_id(alice, ada):
    delete(alice, ada["id"])
    response = alice.client.post(f"{URL}/{ada['id']}/restore")
    assert response.status_code == 200, response.json()
    restored = response.json()
    assert restored["id"] == ada["id"]
    for field in ("name", "email", "phone", "company", "tags", "custom", "created_at"):
        assert restored[field] == ada[field], field
    assert alice.client.get(f"{URL}/{ada['id']}/opportunities").json()["count"] == 1
    assert alice.client.get(f"{URL}/trash").json()["count"] == 0
    assert alice.client.get(URL, {"tag": "engineer"}).json()["count"] == 1
    search = alice.client.post(f"{URL}/search", {"query": {}, "q": "lovelace"}, format="json").json()
    assert [c["id"] for c in search["results"]] == [ada["id"]]


def test_restore_leaves_out_tags_and_fields_deleted_meanwhile(alice, ada):
    delete(alice, ada["id"])
    field = CustomField.objects.get(org=alice.org, key="tier")
    assert alice.client.delete(f"/api/v1/custom-fields/{field.pk}").status_code == 204
    tag_id = next(t["id"] for t in alice.client.get("/api/v1/tags").json()["results"] if t["name"] == "engineer")
    assert alice.client.delete(f"/api/v1/tags/{tag_id}").status_code == 204
    restored = alice.client.post(f"{URL}/{ada['id']}/restore").json()
    assert restored["tags"] == ["vip"] and restored["custom"] == {}


def test_an_email_in_the_trash_does_not_block_a_new_contact_and_restore_then_conflicts(alice, ada):
    delete(alice, ada["id"])
    newer = create(alice, name="Ada again", email="ADA@example.com")
    response = alice.client.post(f"{URL}/{ada['id']}/restore")
    assert response.status_code == 409
    problem = response.json()
    assert problem["errors"][0]["code"] == "duplicate_email" and problem["existing_id"] == newer["id"]
    assert "merge" in problem["detail"]
    assert alice.client.get(f"{URL}/trash").json()["count"] == 1  # still there, nothing half-done


def test_restore_of_a_live_contact_is_409_and_of_an_unknown_one_404(alice, ada):
    response = alice.client.post(f"{URL}/{ada['id']}/restore")
    assert response.status_code == 409 and response.json()["errors"][0]["code"] == "not_in_trash"
    assert alice.client.post(f"{URL}/999999999/restore").status_code == 404
    assert alice.client.post(f"{URL}/nope/restore").status_code == 404


def test_another_org_sees_nothing_of_the_trash(alice, charlie, ada):
    delete(alice, ada["id"])
    assert charlie.client.get(f"{URL}/trash").json()["count"] == 0
    assert charlie.client.post(f"{URL}/{ada['id']}/restore").status_code == 404
    assert charlie.client.delete(f"{URL}/trash/{ada['id']}").status_code == 404
    assert alice.client.get(f"{URL}/trash").json()["count"] == 1


def test_assigned_only_member_sees_and_restores_only_their_contacts(alice, carol, ada):
    mine = create(alice, name="Carol's", assigned_to=carol.user.pk)
    delete(alice, ada["id"])
    delete(carol, mine["id"])
    assert [e["id"] for e in carol.client.get(f"{URL}/trash").json()["results"]] == [mine["id"]]
    assert carol.client.post(f"{URL}/{ada['id']}/restore").status_code == 404
    assert carol.client.post(f"{URL}/{mine['id']}/restore").status_code == 200


def test_purge_now_is_for_owner_and_admin(alice, bob, ada):
    delete(alice, ada["id"])
    assert bob.client.delete(f"{URL}/trash/{ada['id']}").status_code == 403
    assert alice.client.delete(f"{URL}/trash/{ada['id']}").status_code == 204
    assert alice.client.get(f"{URL}/trash").json()["count"] == 0
    assert alice.client.post(f"{URL}/{ada['id']}/restore").status_code == 404
    assert alice.client.delete(f"{URL}/trash/{ada['id']}").status_code == 404


def test_purge_job_deletes_what_is_older_than_trash_days(alice, ada):
    kept = create(alice, name="Recent")
    delete(alice, ada["id"])
    delete(alice, kept["id"])
    with rls_bypass():
        TrashedContact.objects.filter(contact_id=ada["id"]).update(deleted_at=timezone.now() - dt.timedelta(days=31))
    purge_trash(0)  # the scheduled task's body, as a worker runs it
    assert [e["id"] for e in alice.client.get(f"{URL}/trash").json()["results"]] == [kept["id"]]


def test_a_contact_deleted_twice_at_once_is_trashed_once(alice, ada):
    with rls_bypass():
        assert trash.move_to_trash(alice.org.pk, [ada["id"]], deleted_by=None) == [ada["id"]]
        assert trash.move_to_trash(alice.org.pk, [ada["id"]], deleted_by=None) == []
        assert not Contact.objects.filter(pk=ada["id"]).exists()
        assert not Opportunity.objects.filter(contact_id=ada["id"]).exists()
        assert TrashedContact.objects.filter(contact_id=ada["id"]).count() == 1


def test_the_admin_deletes_into_the_trash_too(alice, ada):
    staff = get_user_model().objects.create_superuser("staff", "staff@x.test", "pw")
    client = Client()
    client.force_login(staff)
    grace = create(alice, name="Grace")
    response = client.post(
        reverse("admin:contacts_contact_changelist"),
        {"action": "delete_selected", "_selected_action": [ada["id"], grace["id"]], "post": "yes"},
    )
    assert response.status_code == 302
    response = client.post(
        reverse("admin:contacts_contact_delete", args=[create(alice, name="Third")["id"]]), {"post": "yes"}
    )
    assert response.status_code == 302
    trashed = alice.client.get(f"{URL}/trash").json()["results"]
    assert len(trashed) == 3 and {e["deleted_by"] for e in trashed} == {staff.pk}
    assert alice.client.post(f"{URL}/{ada['id']}/restore").json()["tags"] == ["engineer", "vip"]


def test_trash_and_restore_are_in_the_history(alice, ada):
    delete(alice, ada["id"])
    (latest, *_) = alice.client.get(f"{URL}/{ada['id']}/history").json()["results"]
    assert (latest["event"], latest["source"], latest["actor"]["user"]) == ("trashed", "api", alice.user.pk)
    alice.client.post(f"{URL}/{ada['id']}/restore")
    (latest, *_) = alice.client.get(f"{URL}/{ada['id']}/history").json()["results"]
    assert (latest["event"], latest["source"]) == ("restored", "restore")


def test_a_restore_refused_for_a_taken_email_can_merge_into_the_new_contact(alice, ada):
    delete(alice, ada["id"])
    newer = create(alice, name="Ada again", email="ada@example.com", tags=["new"])
    response = alice.client.post(f"{URL}/{ada['id']}/restore", {"merge_into": newer["id"]}, format="json")
    assert response.status_code == 200, response.content
    survivor = response.json()
    assert survivor["id"] == newer["id"] and isinstance(survivor["merge_id"], int)
    assert survivor["tags"] == ["engineer", "new", "vip"] and survivor["custom"] == {"tier": "gold"}
    assert survivor["phone"] == ada["phone"] and survivor["email"] == "ada@example.com"
    assert alice.client.get(f"{URL}/{newer['id']}/opportunities").json()["count"] == 1
    assert alice.client.get(f"{URL}/{ada['id']}").json()["id"] == newer["id"]  # merged: answers the survivor


@pytest.mark.parametrize("body", [{"merge_into": "x"}, {"nope": 1}, [1]])
def test_a_bad_restore_body_is_422(alice, ada, body):
    delete(alice, ada["id"])
    assert alice.client.post(f"{URL}/{ada['id']}/restore", body, format="json").status_code == 422
    assert alice.client.get(f"{URL}/trash").json()["count"] == 1


def test_an_import_never_matches_a_trashed_contact(alice, ada):
    delete(alice, ada["id"])
    body = {"contacts": [{"email": "ADA@example.com", "name": "Imported Ada"}]}
    response = alice.client.post(f"{URL}/import", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 1
    (live,) = alice.client.get(URL).json()["results"]
    assert live["id"] != ada["id"] and live["name"] == "Imported Ada"
    assert alice.client.get(f"{URL}/trash").json()["results"][0]["name"] == "Ada Lovelace"  # untouched


def test_a_purge_is_in_the_history(alice, ada):
    delete(alice, ada["id"])
    assert alice.client.delete(f"{URL}/trash/{ada['id']}").status_code == 204
    latest = ContactChange.objects.filter(org_id=alice.org.id, contact_id=ada["id"]).order_by("-id").first()
    assert (latest.event, latest.source, latest.user_id) == ("purged", "api", alice.user.pk)
