"""The jobs admin, through the test client as a superuser: an import started in the background
from the contacts admin, its job page (progress, result, error file), cancel and undo."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from contacts.models import Contact
from contacts.testing import make_contact
from jobs import services
from jobs.models import Job
from jobs.tests.helpers import run_jobs

pytestmark = pytest.mark.django_db
IMPORT_URL = "/admin/contacts/contact/import/"
CSV_TEXT = (
    "name,email,tags\r\nAda Lovelace,ada@example.com,vip\r\nBad Row,not-an-email,\r\nGrace,grace@example.com,\r\n"
)


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", "root@example.test", "pw-for-tests")


@pytest.fixture
def staff(root):
    client = Client()
    client.force_login(root)
    return client


def job_url(job_id: int, action: str = "change") -> str:
    return f"/admin/jobs/job/{job_id}/{action}/"


def import_in_background(staff, org, text=CSV_TEXT):
    upload = io.BytesIO(text.encode())
    upload.name = "people.csv"
    data = {"org": org.id, "file": upload, "dedupe_on": "email", "on_duplicate": "update", "run_async": "on"}
    return staff.post(IMPORT_URL, data)


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_import_page_runs_a_big_file_in_the_background(staff, root, org_a):
    response = import_in_background(staff, org_a)
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == job_url(job.pk)
    assert (job.kind, job.status, job.org_id, job.created_by_id) == ("import", "queued", org_a.id, root.id)
    assert job.params["staff"] is True  # the whole org, as the admin's other writes
    assert not Contact.objects.filter(org=org_a).exists()  # nothing imported by the request

    page = staff.get(response["Location"])
    assert page.status_code == 200
    assert any(f"queued as job #{job.pk}" in message for message in shown_messages(page))

    assert run_jobs() == 1
    job.refresh_from_db()
    assert (job.status, job.result["created"], job.result["failed"]) == ("succeeded", 2, 1)
    assert set(Contact.objects.filter(org=org_a).values_list("email", flat=True)) == {
        "ada@example.com",
        "grace@example.com",
    }


def test_background_import_takes_a_file_over_the_synchronous_cap(staff, org_a, settings):
    settings.IMPORT_MAX_BODY_BYTES = 40
    upload = io.BytesIO(CSV_TEXT.encode())
    upload.name = "people.csv"
    response = staff.post(IMPORT_URL, {"org": org_a.id, "file": upload, "dedupe_on": "email", "on_duplicate": "update"})
    assert response.status_code == 200
    assert "Run in the background" in response.context["form"].errors["file"][0]
    assert not Job.objects.exists() and not Contact.objects.exists()
    assert import_in_background(staff, org_a).status_code == 302
    run_jobs()
    assert Job.objects.get().result["created"] == 2


def test_a_bad_header_in_the_background_is_a_form_error_and_no_job(staff, org_a):
    response = import_in_background(staff, org_a, "colour,size\r\nred,XL\r\n")
    assert response.status_code == 200
    assert "file" in response.context["form"].errors
    assert not Job.objects.exists()
    assert import_in_background(staff, org_a).status_code == 302  # the same page with a good file: a job
    assert Job.objects.count() == 1


def test_job_page_shows_progress_result_and_a_working_error_file(staff, org_a):
    import_in_background(staff, org_a)
    run_jobs()
    job = Job.objects.get()
    page = staff.get(job_url(job.pk))
    assert page.status_code == 200
    content = page.content.decode()
    assert "3 / 3 (100%)" in content
    assert "&quot;created&quot;: 2" in content  # the result, pretty-printed
    assert job_url(job.pk, "errors") in content and job_url(job.pk, "undo") in content

    download = staff.get(job_url(job.pk, "errors"))
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    assert download["Content-Disposition"] == f'attachment; filename="job-{job.pk}-errors.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0] == ["name", "email", "tags", "error_row", "error_outcome", "error_message"]
    assert rows[1][:5] == ["Bad Row", "not-an-email", "", "2", "failed"] and "email" in rows[1][5]
    assert len(rows) == 2


def test_changelist_shows_progress_and_filters(staff, root, org_a, org_b):
    Job.objects.create(org=org_a, kind="import", status="running", progress_done=240_000, progress_total=1_000_000)
    Job.objects.create(org=org_b, kind="import", status="queued", created_by=root)
    page = staff.get("/admin/jobs/job/")
    assert page.status_code == 200
    assert "240,000 / 1,000,000 (24%)" in page.content.decode() and "0 / ?" in page.content.decode()
    filtered = staff.get(f"/admin/jobs/job/?kind__exact=import&status__exact=running&org={org_a.id}")
    assert list(filtered.context["cl"].result_list.values_list("org_id", flat=True)) == [org_a.id]
    assert staff.get(f"/admin/jobs/job/?org={org_b.id}").context["cl"].result_list.get().org_id == org_b.id


def test_cancel_a_queued_job_then_again_is_an_error_message(staff, root, org_a):
    import_in_background(staff, org_a)
    job = Job.objects.get()
    # The page's Cancel button posts the change form (its CSRF token) to the cancel view.
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(root)
    html = browser.get(job_url(job.pk)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    cancel_url = re.search(r'<button [^>]*formaction="([^"]+)">Cancel</button>', html).group(1)
    assert cancel_url == job_url(job.pk, "cancel")
    assert browser.post(cancel_url).status_code == 403  # no token, no cancel
    response = browser.post(cancel_url, {"csrfmiddlewaretoken": token}, follow=True)
    assert response.status_code == 200
    assert f"Job #{job.pk} is cancelled." in shown_messages(response)
    job.refresh_from_db()
    assert job.status == "cancelled" and job.cancel_requested
    run_jobs()
    assert not Contact.objects.filter(org=org_a).exists()

    again = staff.post(job_url(job.pk, "cancel"), follow=True)
    assert again.status_code == 200
    assert shown_messages(again)[-1] == f"Job #{job.pk}: The job is already cancelled; there is nothing to cancel."
    assert staff.get(job_url(job.pk, "cancel")).status_code == 405  # a state change is a POST


def test_undo_a_succeeded_import_queues_an_undo_job(staff, root, org_a):
    make_contact(org_a, email="ada@example.com", name="Ada", tags=["old"])
    import_in_background(staff, org_a)
    run_jobs()
    assert Contact.objects.get(email="ada@example.com").tags == ["old", "vip"]
    job = Job.objects.get()
    response = staff.post(job_url(job.pk, "undo"), follow=True)
    assert response.status_code == 200
    undo = Job.objects.get(undo_of=job)
    assert (undo.kind, undo.status, undo.created_by_id) == ("undo", "queued", root.id)
    assert f"Job #{job.pk}: its undo is queued as job #{undo.pk}." in shown_messages(response)

    assert run_jobs() == 1
    job.refresh_from_db()
    assert job.status == "undone"
    (ada,) = Contact.objects.filter(org=org_a)  # Grace removed, Ada put back as she was
    assert (ada.email, ada.name, ada.tags) == ("ada@example.com", "Ada", ["old"])

    again = staff.post(job_url(job.pk, "undo"), follow=True)
    assert again.status_code == 200
    assert shown_messages(again) == [f"Job #{job.pk}: The job is already undone."]
    assert Job.objects.filter(undo_of=job).count() == 1


def test_changelist_actions_cancel_and_undo_report_conflicts(staff, org_a):
    running = Job.objects.create(org=org_a, kind="import", status="running")
    queued = services.enqueue(org_a.id, None, "import", {"options": {}, "format": "csv"})
    response = staff.post(
        "/admin/jobs/job/",
        {"action": "undo_selected", "_selected_action": [running.pk, queued.pk], "index": 0},
        follow=True,
    )
    assert response.status_code == 200
    assert shown_messages(response) == [
        f"Job #{running.pk}: The job is running; cancel it or wait for it to finish.",
        f"Job #{queued.pk}: The job is queued; cancel it or wait for it to finish.",
    ]
    assert not Job.objects.filter(kind="undo").exists()

    response = staff.post(
        "/admin/jobs/job/", {"action": "cancel_selected", "_selected_action": [running.pk, queued.pk], "index": 0}
    )
    assert response.status_code == 302
    running.refresh_from_db()
    queued.refresh_from_db()
    assert (running.status, running.cancel_requested) == ("running", True)  # stops at its next step
    assert (queued.status, queued.cancel_requested) == ("cancelled", True)


def test_job_admin_is_read_only(staff, org_a):
    job = Job.objects.create(org=org_a, kind="undo", status="succeeded")
    assert staff.get("/admin/jobs/job/add/").status_code == 403
    page = staff.get(job_url(job.pk))
    assert page.status_code == 200 and not page.context["has_change_permission"]
    assert staff.post(job_url(job.pk), {"status": "queued"}).status_code == 403
    assert staff.get(job_url(job.pk, "errors")).status_code == 404  # an undo has no error file
    assert staff.post(job_url(999999, "cancel")).status_code == 404


def test_jobs_admin_needs_staff(client, staff, org_a):
    job = Job.objects.create(org=org_a, kind="import", status="queued")
    assert staff.get("/admin/jobs/job/").status_code == 200
    for url in ("/admin/jobs/job/", job_url(job.pk), job_url(job.pk, "errors")):
        assert client.get(url).status_code == 302, url
    assert client.post(job_url(job.pk, "cancel")).status_code == 302
    job.refresh_from_db()
    assert job.status == "queued"
