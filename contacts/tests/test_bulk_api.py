"""Bulk actions on a smart list (`POST /contacts/bulk`, DESIGN §4): a job, run here in-process by
jobs.runner as a worker runs it; selection by query, view or ids within the caller's scope,
`expected_count`, every action, chunks, cancel, resume and undo."""

from __future__ import annotations

import pytest

from contacts import bulk
from contacts.models import Contact, ContactJournal, SmartListView
from contacts.testing import make_contact, make_contacts
from customization.models import CustomField
from jobs.models import Job
from jobs.tests.helpers import run_jobs

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts/bulk"


def company_is(value):
    return {"groups": [{"conditions": [{"field": "company", "op": "eq", "value": value}]}]}


def start(actor, body):
    response = actor.client.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    assert response["Location"] == f"/api/v1/jobs/{response.json()['job']['id']}"
    return response.json()["job"]


def job_of(actor, job_id):
    response = actor.client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.content
    return response.json()


def run(actor, body):
    """Start a bulk job, run it; the finished job."""
    job = start(actor, body)
    assert (job["kind"], job["status"]) == ("bulk", "queued")
    run_jobs()
    return job_of(actor, job["id"])


def contact(org, contact_id) -> Contact:
    return Contact.objects.for_org(org.id).get(pk=contact_id)


@pytest.fixture
def tier(org_a):
    return CustomField.objects.create(
        org=org_a, key="tier", name="Tier", data_type="single_select", options=["Gold", "Silver"]
    )


def test_add_tags_to_a_query_touches_exactly_its_matches(alice):
    acme = make_contacts(alice.org, [{"name": f"A{i}", "company": "Acme", "tags": ["old"]} for i in range(3)])
    other = make_contact(alice.org, name="Other", company="Initech")
    job = run(alice, {"query": company_is("Acme"), "expected_count": 3, "action": {"add_tags": ["VIP", "renewal"]}})
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"done": 3, "total": 3}
    assert job["result"] | {"failures": []} == {
        "matched": 3, "changed": 3, "unchanged": 0, "skipped": 0, "failed": 0, "failures": [],
    }  # fmt: skip
    for c in acme:
        assert contact(alice.org, c.id).tags == ["old", "renewal", "vip"]
    assert contact(alice.org, other.id).tags == []
    assert alice.client.get("/api/v1/tags").status_code == 200


def test_an_expected_count_that_no_longer_holds_fails_the_job_and_touches_nothing(alice):
    make_contacts(alice.org, [{"name": f"A{i}", "company": "Acme"} for i in range(3)])
    job = start(alice, {"query": company_is("Acme"), "expected_count": 3, "action": {"set": {"source": "fair"}}})
    make_contact(alice.org, name="Late", company="Acme")  # the list grew before the job started
    run_jobs()
    job = job_of(alice, job["id"])
    assert job["status"] == "failed"
    assert job["result"]["error"]["code"] == "count_changed"
    assert job["result"]["matched"] == 4
    assert "4 contacts now, not the 3 expected" in job["result"]["error"]["message"]
    assert not Contact.objects.for_org(alice.org.id).filter(source="fair").exists()
    assert not ContactJournal.objects.filter(job_id=job["id"]).exists()


def test_an_assigned_only_member_acts_on_their_contacts_only(alice, carol):
    mine = make_contacts(alice.org, [{"name": f"Mine {i}", "assigned_to_id": carol.user.id} for i in range(2)])
    hidden = make_contacts(alice.org, [{"name": f"Hidden {i}"} for i in range(3)])
    job = run(carol, {"expected_count": 2, "action": {"add_tags": ["mine"]}})  # no filter: "everything"
    assert job["status"] == "succeeded", job
    assert job["result"]["matched"] == 2
    assert all(contact(alice.org, c.id).tags == ["mine"] for c in mine)
    assert all(contact(alice.org, c.id).tags == [] for c in hidden)

    # Counting the hidden ones in fails the job rather than reaching them.
    job = run(carol, {"expected_count": 5, "action": {"set": {"company": "Reached"}}})
    assert job["result"]["error"]["code"] == "count_changed"
    assert not Contact.objects.for_org(alice.org.id).filter(company="Reached").exists()


def test_an_assigned_only_member_cannot_assign_to_others(alice, bob, carol):
    make_contact(alice.org, name="Mine", assigned_to_id=carol.user.id)
    response = carol.client.post(URL, {"expected_count": 1, "action": {"assign_to": bob.user.id}}, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "action.assigned_to"
    assert response.json()["errors"][0]["code"] == "scope_forbidden"
    assert not Job.objects.exists()


def test_a_contact_leaving_the_scope_after_the_start_is_skipped(alice, bob, carol, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_CONTACTS", 1)
    first, second = make_contacts(alice.org, [{"name": n, "assigned_to_id": carol.user.id} for n in ("A", "B")])
    job = start(carol, {"expected_count": 2, "action": {"set": {"source": "carol"}}})
    original = bulk.Chunk.apply

    def reassign_after_first_chunk(chunk):
        done = original(chunk)
        if chunk.job.progress_done == 1:
            Contact.objects.filter(pk=second.pk).update(assigned_to_id=bob.user.id)
        return done

    monkeypatch.setattr(bulk.Chunk, "apply", reassign_after_first_chunk)
    run_jobs()
    job = job_of(carol, job["id"])
    assert (job["result"]["changed"], job["result"]["skipped"]) == (1, 1)
    assert contact(alice.org, first.id).source == "carol"
    assert contact(alice.org, second.id).source == ""


def test_a_filter_value_with_quotes_and_wildcards_matches_only_what_search_matches(alice):
    tricky = make_contact(alice.org, name="O'Brien", company='50%_off "deals"')
    make_contacts(alice.org, [{"name": "X", "company": "50x-off deals"}, {"name": "Y", "company": "5"}])
    query = {"groups": [{"conditions": [{"field": "company", "op": "contains", "value": '0%_off "d'}]}]}
    search = alice.client.post("/api/v1/contacts/search", {"query": query}, format="json").json()
    assert [row["id"] for row in search["results"]] == [tricky.id]
    job = run(alice, {"query": query, "q": "o'brien", "expected_count": 1, "action": {"add_tags": ["promo"]}})
    assert job["status"] == "succeeded", job
    assert [c.name for c in Contact.objects.for_org(alice.org.id) if c.tags] == ["O'Brien"]


def test_set_and_clear_built_in_and_custom_fields_as_a_patch_would(alice, tier):
    people = make_contacts(
        alice.org,
        [
            {"name": "Ada Lovelace", "company": "Old", "source": "web", "custom": {"tier": "Silver"}},
            {"name": "Grace Hopper", "company": "Old", "notes": "keep"},
        ],
    )
    ids = [c.id for c in people]
    values = {"company": "Ünited Corp", "custom.tier": "gold", "dnc": "yes"}
    job = run(alice, {"ids": ids, "expected_count": 2, "action": {"set": values}})
    assert job["status"] == "succeeded", job
    for contact_id in ids:
        stored = contact(alice.org, contact_id)
        assert (stored.company, stored.dnc, stored.custom) == ("Ünited Corp", True, {"tier": "Gold"})
        assert stored.folded["company"] == "ünited corp"
    # Derived columns follow, so search finds the new values at once (q and filters).
    found = alice.client.post(
        "/api/v1/contacts/search",
        {"q": "united", "query": {"groups": [{"conditions": [{"field": "custom.tier", "op": "eq", "value": "Gold"}]}]}},
        format="json",
    ).json()
    assert sorted(row["id"] for row in found["results"]) == sorted(ids)

    job = run(alice, {"ids": ids, "expected_count": 2, "action": {"clear": ["source", "custom.tier", "company"]}})
    assert job["status"] == "succeeded", job
    assert job["result"]["changed"] == 2
    for contact_id in ids:
        stored = contact(alice.org, contact_id)
        assert (stored.source, stored.company, stored.custom) == ("", "", {})
        assert "company" not in stored.folded
    assert contact(alice.org, ids[1]).notes == "keep"  # what the action does not name stays


def test_setting_the_name_derives_first_and_last_names(alice):
    person = make_contact(alice.org, name="Ada Lovelace")
    run(alice, {"ids": [person.id], "expected_count": 1, "action": {"set": {"name": "Grace Brewster Hopper"}}})
    stored = contact(alice.org, person.id)
    assert (stored.first_name, stored.last_name, stored.name) == ("Grace Brewster", "Hopper", "Grace Brewster Hopper")
    assert "hopper" in stored.search_text


def test_assign_and_unassign(alice, bob):
    people = make_contacts(alice.org, [{"name": "A"}, {"name": "B", "assigned_to_id": alice.user.id}])
    run(alice, {"expected_count": 2, "action": {"assign_to": bob.user.id}})
    assert {contact(alice.org, c.id).assigned_to_id for c in people} == {bob.user.id}
    job = run(alice, {"expected_count": 2, "action": {"assign_to": None}})
    assert job["result"]["changed"] == 2
    assert {contact(alice.org, c.id).assigned_to_id for c in people} == {None}


def test_remove_tags_and_unchanged_contacts(alice):
    tagged = make_contact(alice.org, name="Tagged", tags=["vip", "keep"])
    plain = make_contact(alice.org, name="Plain", tags=["keep"])
    job = run(alice, {"expected_count": 2, "action": {"remove_tags": ["VIP", "never-used"]}})
    assert (job["result"]["changed"], job["result"]["unchanged"]) == (1, 1)
    assert contact(alice.org, tagged.id).tags == ["keep"]
    assert contact(alice.org, plain.id).tags == ["keep"]
    # Only the changed contact is kept for undo, and only it got a new updated_at.
    assert list(ContactJournal.objects.filter(job_id=job["id"]).values_list("contact_id", flat=True)) == [tagged.id]
    assert contact(alice.org, plain.id).updated_at == plain.updated_at


def test_a_contact_at_the_tag_cap_fails_alone(alice):
    full = make_contact(alice.org, name="Full", tags=[f"t{i}" for i in range(100)])
    fine = make_contact(alice.org, name="Fine")
    job = run(alice, {"expected_count": 2, "action": {"add_tags": ["one-more"]}})
    assert job["status"] == "succeeded"
    assert (job["result"]["changed"], job["result"]["failed"]) == (1, 1)
    assert job["result"]["failures"] == [{"contact_id": full.id, "reason": "It would have more than 100 tags."}]
    assert "one-more" in contact(alice.org, fine.id).tags
    assert "one-more" not in contact(alice.org, full.id).tags


def test_a_saved_view_is_a_selection(alice):
    make_contacts(alice.org, [{"name": "In", "company": "Acme"}, {"name": "Out", "company": "Other"}])
    view = SmartListView.objects.create(org=alice.org, name="Acme", position=0, query=company_is("Acme"))
    job = run(alice, {"view": view.id, "expected_count": 1, "action": {"add_tags": ["acme"]}})
    assert job["status"] == "succeeded", job
    assert [c.name for c in Contact.objects.for_org(alice.org.id) if c.tags] == ["In"]


@pytest.mark.parametrize(
    "body, attr, code",
    [
        ({"expected_count": 1, "action": {}}, "action", "invalid_action"),
        ({"expected_count": 1, "action": {"add_tags": ["a"], "set": {"company": "x"}}}, "action", "invalid_action"),
        ({"expected_count": 1, "action": {"delete": True}}, "action", "invalid_action"),
        ({"expected_count": 1, "action": {"set": {"email": "a@b.co"}}}, "action.set.email", "not_bulk_settable"),
        ({"expected_count": 1, "action": {"set": {"tags": ["x"]}}}, "action.set.tags", "not_bulk_settable"),
        ({"expected_count": 1, "action": {"set": {"nope": 1}}}, "action.set.nope", "unknown_field"),
        ({"expected_count": 1, "action": {"set": {"custom.no": 1}}}, "action.set.custom.no", "unknown_custom_field"),
        ({"expected_count": 1, "action": {"set": {"dnc": "maybe"}}}, "action.set.dnc", None),
        ({"expected_count": 1, "action": {"clear": ["created_at"]}}, "action.clear.created_at", "unknown_field"),
        ({"expected_count": 1, "action": {"add_tags": ["x" * 65]}}, "action.add_tags.0", "invalid_tag"),
        ({"expected_count": 1, "action": {"assign_to": 999999}}, "action.assigned_to", "not_a_member"),
        ({"action": {"add_tags": ["a"]}}, "expected_count", "required"),
        ({"expected_count": -1, "action": {"add_tags": ["a"]}}, "expected_count", None),
        ({"expected_count": 1, "action": {"add_tags": ["a"]}, "dryrun": True}, "dryrun", "unknown_key"),
        ({"expected_count": 1, "view": 1, "ids": [1], "action": {"add_tags": ["a"]}}, "ids", "conflict"),
        ({"expected_count": 1, "view": 99999, "action": {"add_tags": ["a"]}}, "view", "not_found"),
        ({"expected_count": 1, "query": company_is(5), "action": {"add_tags": ["a"]}}, None, None),
    ],
)
def test_bad_requests_are_422_and_start_nothing(alice, body, attr, code):
    response = alice.client.post(URL, body, format="json")
    assert response.status_code == 422, response.content
    errors = response.json()["errors"]
    if attr is not None:
        assert any(e["attr"] == attr for e in errors), errors
    if code is not None:
        assert any(e["code"] == code for e in errors), errors
    assert not Job.objects.exists()


def test_work_goes_in_chunks_and_a_cancel_stops_after_a_committed_one(alice, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_CONTACTS", 2)
    make_contacts(alice.org, [{"name": f"P{i}"} for i in range(5)])
    job_id = start(alice, {"expected_count": 5, "action": {"add_tags": ["batch"]}})["id"]
    original = bulk.Chunk.apply

    def cancel_after_first_chunk(chunk):
        done = original(chunk)
        if chunk.job.progress_done == 2:
            assert alice.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200
        return done

    monkeypatch.setattr(bulk.Chunk, "apply", cancel_after_first_chunk)
    run_jobs()
    job = job_of(alice, job_id)
    assert job["status"] == "cancelled"
    assert job["progress"] == {"done": 2, "total": 5}
    assert sum(1 for c in Contact.objects.for_org(alice.org.id) if c.tags) == 2

    # The cancelled job's committed chunk can be undone; the rest was never touched.
    assert alice.client.post(f"/api/v1/jobs/{job_id}/undo").status_code == 202
    run_jobs()
    assert not any(c.tags for c in Contact.objects.for_org(alice.org.id))


def test_a_job_resumes_after_its_worker_died_without_applying_a_chunk_twice(alice, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_CONTACTS", 2)
    people = make_contacts(alice.org, [{"name": f"P{i}", "notes": ""} for i in range(5)])
    job_id = start(alice, {"expected_count": 5, "action": {"add_tags": ["once"]}})["id"]
    original = bulk.Chunk.apply

    class WorkerKilled(BaseException):
        pass

    def die_after_second_chunk(chunk):
        done = original(chunk)
        if chunk.job.progress_done == 4:
            raise WorkerKilled  # inside the step: its transaction rolls back
        return done

    monkeypatch.setattr(bulk.Chunk, "apply", die_after_second_chunk)
    with pytest.raises(WorkerKilled):
        run_jobs()
    job = job_of(alice, job_id)
    assert (job["status"], job["progress"]["done"]) == ("running", 2)
    monkeypatch.setattr(bulk.Chunk, "apply", original)
    Job.objects.filter(pk=job_id).update(status=Job.Status.QUEUED)  # what the queue's retry does
    run_jobs()
    job = job_of(alice, job_id)
    assert (job["status"], job["progress"], job["result"]["changed"]) == ("succeeded", {"done": 5, "total": 5}, 5)
    assert all(contact(alice.org, c.id).tags == ["once"] for c in people)


def test_undo_puts_back_touched_fields_and_reports_later_changes(alice, bob, tier):
    first, second, third = make_contacts(
        alice.org,
        [
            {"name": "First", "company": "Old", "tags": ["gone"], "custom": {"tier": "Silver"}},
            {"name": "Second", "company": "Old", "tags": ["gone"]},
            {"name": "Third", "company": "Old"},
        ],
    )
    ids = [first.id, second.id, third.id]
    set_job = run(bob, {"ids": ids, "expected_count": 3, "action": {"set": {"company": "New", "custom.tier": "Gold"}}})
    tag_job = run(bob, {"ids": ids, "expected_count": 3, "action": {"remove_tags": ["gone"]}})
    add_job = run(bob, {"ids": ids, "expected_count": 3, "action": {"add_tags": ["fresh"]}})
    # Someone else edits the second contact's company since.
    assert alice.client.patch(f"/api/v1/contacts/{second.id}", {"company": "Mine"}, format="json").status_code == 200

    for job in (add_job, tag_job, set_job):  # newest first
        response = bob.client.post(f"/api/v1/jobs/{job['id']}/undo")
        assert response.status_code == 202, response.content
        run_jobs()
        assert job_of(bob, job["id"])["status"] == "undone"

    assert contact(alice.org, first.id).company == "Old"
    assert contact(alice.org, first.id).custom == {"tier": "Silver"}
    assert contact(alice.org, first.id).tags == ["gone"]
    assert contact(alice.org, second.id).company == "Mine"  # changed since: reported, not overwritten
    assert contact(alice.org, second.id).custom == {}
    assert contact(alice.org, second.id).tags == ["gone"]
    assert contact(alice.org, third.id).tags == []
    undo = Job.objects.filter(undo_of_id=set_job["id"]).get()
    assert {"contact_id": second.id, "field": "company", "reason": "Changed since the job: not overwritten."} in (
        undo.result["kept_fields"]
    )


def test_another_orgs_contacts_are_never_selected(alice, charlie):
    make_contact(charlie.org, name="Theirs", company="Acme")
    mine = make_contact(alice.org, name="Mine", company="Acme")
    theirs_id = Contact.objects.for_org(charlie.org.id).get().id
    job = run(alice, {"query": company_is("Acme"), "expected_count": 1, "action": {"add_tags": ["x"]}})
    assert job["status"] == "succeeded"
    assert contact(alice.org, mine.id).tags == ["x"]
    assert contact(charlie.org, theirs_id).tags == []
    # ids of another org select nothing: the job fails on the count, touching nothing.
    job = run(alice, {"ids": [theirs_id], "expected_count": 1, "action": {"add_tags": ["y"]}})
    assert (job["status"], job["result"]["matched"]) == ("failed", 0)
    assert contact(charlie.org, theirs_id).tags == []
    # And the other org cannot see or act on the job.
    assert charlie.client.get(f"/api/v1/jobs/{job['id']}").status_code == 404
    assert charlie.client.post(f"/api/v1/jobs/{job['id']}/undo").status_code == 404


def test_undo_of_add_tags_removes_only_the_tags_the_job_added(alice):
    had = make_contact(alice.org, name="Had", tags=["vip"])
    plain = make_contact(alice.org, name="Plain")
    job = run(alice, {"expected_count": 2, "action": {"add_tags": ["vip", "new"]}})
    assert (job["result"]["changed"], contact(alice.org, had.id).tags) == (2, ["new", "vip"])
    assert alice.client.post(f"/api/v1/jobs/{job['id']}/undo").status_code == 202
    run_jobs()
    assert contact(alice.org, had.id).tags == ["vip"]
    assert contact(alice.org, plain.id).tags == []


def test_an_empty_selection_is_a_job_that_changes_nothing(alice):
    make_contact(alice.org, name="Not selected")
    job = run(alice, {"ids": [], "expected_count": 0, "action": {"add_tags": ["x"]}})
    assert (job["status"], job["result"]["matched"], job["progress"]) == ("succeeded", 0, {"done": 0, "total": 0})
    assert not any(c.tags for c in Contact.objects.for_org(alice.org.id))
    export = alice.client.post("/api/v1/contacts/export", {"ids": [], "columns": ["id"]}, format="json")
    assert b"".join(export.streaming_content) == b"id\n"


def test_trash_moves_the_selection_to_the_trash_and_undo_brings_it_back(alice, bob, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK_CONTACTS", 2)  # several chunks
    mine = make_contacts(alice.org, [{"name": f"Acme {i}", "company": "Acme", "tags": ["lead"]} for i in range(5)])
    other = make_contact(alice.org, name="Other", company="Else")
    job = run(bob, {"query": company_is("Acme"), "expected_count": 5, "action": {"trash": True}})
    assert job["status"] == "succeeded" and job["result"]["changed"] == 5
    assert list(Contact.objects.for_org(alice.org.id).values_list("pk", flat=True)) == [other.pk]
    trash = alice.client.get("/api/v1/contacts/trash").json()
    assert trash["count"] == 5 and {e["job"] for e in trash["results"]} == {job["id"]}
    assert {e["deleted_by"] for e in trash["results"]} == {bob.user.pk}

    # One is restored by hand; another restored and deleted again by hand: undo brings back the rest.
    assert alice.client.post(f"/api/v1/contacts/{mine[0].pk}/restore").status_code == 200
    assert alice.client.post(f"/api/v1/contacts/{mine[1].pk}/restore").status_code == 200
    assert alice.client.delete(f"/api/v1/contacts/{mine[1].pk}").status_code == 204
    assert bob.client.post(f"/api/v1/jobs/{job['id']}/undo").status_code == 202
    run_jobs()
    assert job_of(bob, job["id"])["status"] == "undone"
    live = set(Contact.objects.for_org(alice.org.id).values_list("pk", flat=True))
    assert live == {other.pk, mine[0].pk, mine[2].pk, mine[3].pk, mine[4].pk}
    assert all(contact(alice.org, c.pk).tags == ["lead"] for c in (mine[2], mine[3], mine[4]))
    assert [e["id"] for e in alice.client.get("/api/v1/contacts/trash").json()["results"]] == [mine[1].pk]


def test_trash_undo_leaves_a_contact_whose_email_was_taken_reported(alice, bob):
    (taken,) = make_contacts(alice.org, [{"name": "Ada", "email": "ada@x.test", "company": "Acme"}])
    job = run(bob, {"ids": [taken.pk], "expected_count": 1, "action": {"trash": True}})
    response = alice.client.post("/api/v1/contacts", {"name": "Ada 2", "email": "ADA@x.test"}, format="json")
    assert response.status_code == 201
    assert bob.client.post(f"/api/v1/jobs/{job['id']}/undo").status_code == 202
    run_jobs()
    undo = Job.objects.filter(undo_of_id=job["id"]).get()
    assert undo.result["restored"] == 0 and undo.result["kept"] == 1
    assert undo.result["kept_fields"][0]["contact_id"] == taken.pk
    assert alice.client.get("/api/v1/contacts/trash").json()["count"] == 1


def test_an_assigned_only_member_trashes_only_their_contacts(alice, carol):
    make_contacts(
        alice.org,
        [{"name": "Theirs", "company": "Acme"}, {"name": "Mine", "company": "Acme", "assigned_to": carol.user}],
    )
    job = run(carol, {"query": company_is("Acme"), "expected_count": 1, "action": {"trash": True}})
    assert job["result"]["changed"] == 1
    assert list(Contact.objects.for_org(alice.org.id).values_list("name", flat=True)) == ["Theirs"]


def test_trash_must_be_true(alice):
    response = alice.client.post(URL, {"ids": [1], "expected_count": 1, "action": {"trash": "yes"}}, format="json")
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "action.trash"
