"""Async imports through the HTTP API: a job of the task queue, run here in-process by
jobs.runner (as a worker runs it), with progress, the error file, cancel, resume and undo."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test import override_settings

from contacts.importing import jobs as importing
from contacts.models import Contact, ImportUpload
from contacts.testing import make_contact
from customization.models import CustomField
from jobs.models import Job
from jobs.tests.helpers import run_jobs

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts/import"


def post_csv(actor, text, query="?async=true"):
    return actor.client.generic("POST", f"{URL}{query}", text.encode(), content_type="text/csv")


def get_job(actor, job_id):
    response = actor.client.get(f"/api/v1/jobs/{job_id}")
    assert response.status_code == 200, response.content
    return response.json()


def people(count, start=0, delimiter=","):
    lines = [delimiter.join(["name", "email", "tags"])]
    lines += [delimiter.join([f"Person {i}", f"p{i}@example.com", "imported"]) for i in range(start, start + count)]
    return "\r\n".join(lines) + "\r\n"


def state_of(org):
    """What an org holds, comparable between orgs: each contact's fields, tags and custom values."""
    return sorted(
        (c.email, c.name, c.phone, c.company, tuple(c.tags), tuple(sorted(c.custom.items())))
        for c in Contact.objects.for_org(org.id)
    )


def test_async_csv_import_is_a_job_that_a_worker_runs(alice):
    response = post_csv(alice, people(30, delimiter=";"))
    assert response.status_code == 202, response.content
    job = response.json()
    assert response["Location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["kind"], job["status"], job["progress"]) == ("import", "queued", {"done": 0, "total": None})
    assert Contact.objects.for_org(alice.org.id).count() == 0  # nothing imported by the request

    assert run_jobs() == 1
    job = get_job(alice, job["id"])
    assert job["status"] == "succeeded"
    assert job["progress"] == {"done": 30, "total": 30}
    assert job["result"]["created"] == 30 and job["result"]["failed"] == 0
    assert job["started_at"] and job["finished_at"] and job["undo_until"]
    assert Contact.objects.for_org(alice.org.id).filter(email="p29@example.com").exists()
    assert not ImportUpload.objects.filter(job_id=job["id"]).exists()  # the upload is dropped once finished


def test_async_import_gives_what_a_synchronous_one_gives(alice, charlie, monkeypatch):
    """Steps commit separately, so rows of one file that match each other across steps must
    still merge as in one transaction (in-file chains, phone fallbacks)."""
    monkeypatch.setattr(importing, "STEP_ROWS", 3)
    for actor in (alice, charlie):
        make_contact(actor.org, email="old@example.com", name="Old", phone="+14155550100")
    text = (
        "name,email,phone,company\r\n"
        "A,a@example.com,+14155550101,\r\n"
        "B,,+14155550101,Acme\r\n"  # same phone, no email: merges into A
        ",a@example.com,,Initech\r\n"  # A again by email
        "D,d@example.com,+14155550100,\r\n"  # phone of Old, another email: another person
        "E,,+14155550100,Umbrella\r\n"  # phone of Old and D: the older contact, by phone
        "bad,not-an-email,,\r\n"
        "G,g@example.com,,\r\n"
    )
    assert actor_import_sync(charlie, text).status_code == 200
    assert post_csv(alice, text).status_code == 202
    run_jobs()
    assert state_of(alice.org) == state_of(charlie.org)


def test_an_async_reimport_changes_nothing_and_its_undo_has_nothing_to_put_back(alice, monkeypatch):
    """DESIGN §4: re-importing the same file creates nothing and changes nothing; as a job too,
    across steps, so its undo (which puts back what the job wrote) finds nothing to undo."""
    monkeypatch.setattr(importing, "STEP_ROWS", 4)
    CustomField.objects.create(org=alice.org, key="plan", name="Plan", data_type="text")
    text = people(9).replace("tags\r\n", "tags,custom.plan\r\n").replace("imported\r\n", "imported,pro\r\n")
    first = post_csv(alice, text).json()["id"]
    run_jobs()
    assert get_job(alice, first)["result"]["created"] == 9
    before = state_of(alice.org)
    updated_at = sorted(Contact.objects.for_org(alice.org.id).values_list("id", "updated_at"))

    again = post_csv(alice, text).json()["id"]
    run_jobs()
    result = get_job(alice, again)["result"]
    assert (result["created"], result["updated"], result["skipped"], result["failed"]) == (0, 0, 9, 0)
    assert sorted(Contact.objects.for_org(alice.org.id).values_list("id", "updated_at")) == updated_at
    undo = alice.client.post(f"/api/v1/jobs/{again}/undo").json()["id"]
    run_jobs()
    assert get_job(alice, undo)["result"]["removed"] == 0 and get_job(alice, undo)["result"]["restored"] == 0
    assert state_of(alice.org) == before


def actor_import_sync(actor, text):
    return post_csv(actor, text, query="")


def test_async_json_import(alice):
    body = {"contacts": [{"name": "Ada", "email": "ada@example.com", "colour": "red"}, "nope"],
            "options": {"async": True, "tags": ["json"]}}  # fmt: skip
    response = alice.client.post(URL, body, format="json")
    assert response.status_code == 202, response.content
    run_jobs()
    job = get_job(alice, response.json()["id"])
    assert job["status"] == "succeeded"
    assert (job["result"]["created"], job["result"]["failed"], job["result"]["ignored_columns"]) == (1, 1, ["colour"])
    assert Contact.objects.for_org(alice.org.id).get(email="ada@example.com").tags == ["json"]


def test_async_multipart_upload(alice):
    upload = io.BytesIO(people(5).encode())
    upload.name = "people.csv"
    response = alice.client.post(f"{URL}?async=true", {"file": upload}, format="multipart")
    assert response.status_code == 202, response.content
    run_jobs()
    assert get_job(alice, response.json()["id"])["result"]["created"] == 5


def test_unreadable_header_is_refused_before_any_job(alice):
    response = post_csv(alice, "colour,size\r\nred,XL\r\n")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "no_known_columns"
    assert not Job.objects.exists()


def test_unknown_option_is_refused(alice):
    response = post_csv(alice, people(2), query="?async=true&dryrun=true")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "dryrun"
    assert not Job.objects.exists()


@override_settings(ASYNC_IMPORT_MAX_ROWS=10)
def test_too_many_rows_fail_the_job_before_anything_is_written(alice):
    response = post_csv(alice, people(11))
    run_jobs()
    job = get_job(alice, response.json()["id"])
    assert job["status"] == "failed"
    assert job["result"]["error"]["code"] == "too_many_rows"
    assert Contact.objects.for_org(alice.org.id).count() == 0


def test_error_file_lists_failed_rows_that_reimport_once_fixed(alice):
    CustomField.objects.create(org=alice.org, key="seats", name="Seats", data_type="number")
    text = (
        "name;email;custom.seats;tags\r\n"
        "Ada;ada@example.com;3;vip\r\n"
        "Bad Email;bad@;4;vip\r\n"
        "Bad Seats;seats@example.com;many;a,b\r\n"
    )
    response = post_csv(alice, text)
    run_jobs()
    job = get_job(alice, response.json()["id"])
    assert job["errors"]["count"] == 2 and job["result"]["failed"] == 2
    download = alice.client.get(job["errors"]["url"])
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert [(r["error_row"], r["error_outcome"], r["email"]) for r in rows] == [
        ("2", "failed", "bad@"),
        ("3", "failed", "seats@example.com"),
    ]
    assert rows[0]["error_message"].startswith("email: ")
    assert rows[1]["error_message"].startswith("custom.seats: ")

    fixed = io.StringIO()
    writer = csv.DictWriter(fixed, fieldnames=list(rows[0]))
    writer.writeheader()
    rows[0]["email"], rows[1]["custom.seats"] = "bad@example.com", "5"
    writer.writerows(rows)
    again = post_csv(alice, fixed.getvalue(), query="")
    assert again.status_code == 200
    body = again.json()
    assert (body["created"], body["failed"]) == (2, 0)
    assert set(body["ignored_columns"]) == {"error_row", "error_outcome", "error_message"}
    seats = Contact.objects.for_org(alice.org.id).get(email="seats@example.com")
    assert seats.custom == {"seats": 5} and seats.tags == ["a", "b"]


def test_cancel_a_queued_job(alice):
    job_id = post_csv(alice, people(3)).json()["id"]
    response = alice.client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    run_jobs()
    assert Contact.objects.for_org(alice.org.id).count() == 0
    again = alice.client.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["errors"][0]["code"] == "job_finished"


def test_cancel_mid_way_stops_after_a_committed_step(alice, monkeypatch):
    monkeypatch.setattr(importing, "STEP_ROWS", 4)
    job_id = post_csv(alice, people(10)).json()["id"]
    original = importing._import_step

    def step_then_cancel(job, *args):
        original(job, *args)
        if job.progress_done == 4:  # after the first step: a client cancels
            assert alice.client.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 200

    monkeypatch.setattr(importing, "_import_step", step_then_cancel)
    run_jobs()
    job = get_job(alice, job_id)
    assert job["status"] == "cancelled"
    assert job["progress"] == {"done": 4, "total": 10}
    assert job["result"]["created"] == 4
    assert Contact.objects.for_org(alice.org.id).count() == 4  # the committed step, nothing half-written


def test_a_job_resumes_after_its_worker_died_without_applying_a_step_twice(alice, charlie, monkeypatch):
    monkeypatch.setattr(importing, "STEP_ROWS", 4)
    text = people(10) + "Person 1 again,p1@example.com,second\r\n"
    job_id = post_csv(alice, text).json()["id"]
    original = importing._import_step

    class WorkerKilled(BaseException):
        pass

    def die_in_third_step(job, *args):
        original(job, *args)
        if job.progress_done == 11:
            raise WorkerKilled  # inside the step's transaction: it is rolled back

    monkeypatch.setattr(importing, "_import_step", die_in_third_step)
    with pytest.raises(WorkerKilled):
        run_jobs()
    job = get_job(alice, job_id)
    assert (job["status"], job["progress"]["done"]) == ("running", 8)

    monkeypatch.setattr(importing, "_import_step", original)
    from jobs import runner

    runner.run(alice.org.id, job_id)  # the queue retries the stalled job
    job = get_job(alice, job_id)
    assert job["status"] == "succeeded"
    assert (job["result"]["total"], job["result"]["created"], job["result"]["updated"]) == (11, 10, 1)
    assert post_csv(charlie, text).status_code == 202
    run_jobs()
    assert state_of(alice.org) == state_of(charlie.org)


# --- undo ----------------------------------------------------------------------------------------


def test_undo_puts_back_what_the_import_did_and_keeps_later_changes(alice, bob):
    field = CustomField.objects.create(org=alice.org, key="plan", name="Plan", data_type="text")
    untouched = make_contact(alice.org, email="untouched@example.com", name="Untouched")
    make_contact(alice.org, email="kept@example.com", name="Kept", company="Old Co", tags=["old"],
                        custom={"plan": "basic"})  # fmt: skip
    edited = make_contact(alice.org, email="edited@example.com", name="Edited", company="Before")
    before = state_of(alice.org)
    text = (
        "name,email,company,tags,custom.plan\r\n"
        "New One,new1@example.com,,,\r\n"
        "New Two,new2@example.com,,,\r\n"
        "Kept Renamed,kept@example.com,New Co,imported,pro\r\n"
        ",edited@example.com,After,imported,\r\n"
    )
    import_id = post_csv(bob, text).json()["id"]
    run_jobs()
    assert get_job(bob, import_id)["result"]["updated"] == 2

    # Someone else changes one imported field and one created contact afterwards.
    assert (
        alice.client.patch(f"/api/v1/contacts/{edited.id}", {"company": "Changed Later"}, format="json").status_code
        == 200
    )
    new_two = Contact.objects.for_org(alice.org.id).get(email="new2@example.com")
    assert alice.client.patch(f"/api/v1/contacts/{new_two.id}", {"notes": "called"}, format="json").status_code == 200

    response = bob.client.post(f"/api/v1/jobs/{import_id}/undo")
    assert response.status_code == 202, response.content
    undo = response.json()
    assert (undo["kind"], undo["undo_of"], undo["status"]) == ("undo", import_id, "queued")
    run_jobs()
    undo = get_job(bob, undo["id"])
    assert undo["status"] == "succeeded"
    assert get_job(bob, import_id)["status"] == "undone"
    result = undo["result"]
    assert (result["removed"], result["restored"], result["kept"]) == (1, 2, 1)
    assert {(k["contact_id"], k["field"]) for k in result["kept_fields"]} == {(edited.id, "company"), (new_two.id, "*")}

    contacts = {c.email: c for c in Contact.objects.for_org(alice.org.id)}
    assert "new1@example.com" not in contacts and "new2@example.com" in contacts
    kept_now = contacts["kept@example.com"]
    assert (kept_now.name, kept_now.company, kept_now.tags, kept_now.custom) == (
        "Kept",
        "Old Co",
        ["old"],
        {"plan": "basic"},
    )
    assert contacts["edited@example.com"].company == "Changed Later"  # changed since: not overwritten
    assert contacts["edited@example.com"].tags == []  # the tag the import added is gone
    assert contacts["untouched@example.com"].updated_at == untouched.updated_at
    assert [row for row in state_of(alice.org) if row[0] in ("kept@example.com", "untouched@example.com")] == [
        row for row in before if row[0] in ("kept@example.com", "untouched@example.com")
    ]
    assert field.pk  # the field itself stays

    again = bob.client.post(f"/api/v1/jobs/{import_id}/undo")
    assert (again.status_code, again.json()["errors"][0]["code"]) == (409, "already_undone")


def test_undo_needs_a_finished_job_within_trash_days(alice):
    job_id = post_csv(alice, people(2)).json()["id"]
    response = alice.client.post(f"/api/v1/jobs/{job_id}/undo")
    assert (response.status_code, response.json()["errors"][0]["code"]) == (409, "job_not_finished")
    run_jobs()
    with override_settings(TRASH_DAYS=0):
        response = alice.client.post(f"/api/v1/jobs/{job_id}/undo")
    assert (response.status_code, response.json()["errors"][0]["code"]) == (409, "undo_expired")


# --- who sees which job ----------------------------------------------------------------------------


def test_members_see_their_own_jobs_and_admins_every_job(alice, bob, carol, charlie):
    bobs = post_csv(bob, people(1)).json()["id"]
    alices = post_csv(alice, people(1, start=5)).json()["id"]
    assert [j["id"] for j in bob.client.get("/api/v1/jobs").json()["results"]] == [bobs]
    assert [j["id"] for j in alice.client.get("/api/v1/jobs").json()["results"]] == [alices, bobs]
    assert carol.client.get("/api/v1/jobs").json()["results"] == []
    for actor, job_id in ((carol, bobs), (bob, alices), (charlie, bobs)):
        for method, path in (("get", ""), ("post", "/cancel"), ("post", "/undo"), ("get", "/errors")):
            response = getattr(actor.client, method)(f"/api/v1/jobs/{job_id}{path}")
            assert response.status_code == 404, (actor.user, path)
    assert alice.client.post(f"/api/v1/jobs/{bobs}/cancel").status_code == 200  # an admin may
    assert alice.client.get("/api/v1/jobs?status=cancelled").json()["count"] == 1
    assert alice.client.get("/api/v1/jobs?kind=undo").json()["count"] == 0


def test_the_app_role_can_queue_jobs_but_not_read_the_queue(alice):
    """The queue's rows name every org's jobs: a request may add one, never read them."""
    assert post_csv(alice, people(1)).status_code == 202
    from crm.db_security import as_org

    with pytest.raises(Exception, match="permission denied"), as_org(alice.org.id), connection.cursor() as cursor:
        cursor.execute("SELECT args FROM procrastinate_jobs")


def test_undo_data_expires_after_trash_days(alice, charlie):
    from datetime import timedelta

    from django.utils import timezone

    from contacts.models import ContactJournal
    from jobs.runner import expire_undo_data

    make_contact(alice.org, email="p0@example.com", name="Before")
    old_id = post_csv(alice, people(2)).json()["id"]
    recent_id = post_csv(charlie, people(2)).json()["id"]
    run_jobs()
    assert ContactJournal.objects.filter(job_id=old_id).count() == 2
    Job.objects.filter(pk=old_id).update(finished_at=timezone.now() - timedelta(days=31))
    assert expire_undo_data() == 2
    assert not ContactJournal.objects.filter(job_id=old_id).exists()
    assert ContactJournal.objects.filter(job_id=recent_id).count() == 2  # another org's recent job keeps its
    response = alice.client.post(f"/api/v1/jobs/{old_id}/undo")
    assert (response.status_code, response.json()["errors"][0]["code"]) == (409, "undo_expired")


def test_a_worker_taken_for_dead_stops_instead_of_applying_a_step_twice(alice, monkeypatch):
    """Two workers on one job (the first only presumed dead): the step of the one whose committed
    progress is stale is refused, and writes nothing."""
    from jobs import runner
    from jobs.errors import JobSuperseded

    monkeypatch.setattr(importing, "STEP_ROWS", 2)
    job_id = post_csv(alice, people(4)).json()["id"]
    steps = []

    def step(job):
        steps.append(job.progress_done)
        if job.progress_done == 2:  # between steps, the job's retry on another worker committed one
            Job.objects.filter(pk=job.pk).update(progress_done=4)
        return runner.step(job)

    monkeypatch.setattr(importing, "step", step)
    with pytest.raises(JobSuperseded):
        importing.run(runner._start(alice.org.id, job_id))
    assert steps == [0, 0, 2]  # counting, the first step, then the refused one
    assert Contact.objects.for_org(alice.org.id).count() == 2  # the first step only
