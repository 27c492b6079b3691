"""The contacts admin: pages load, edits go through ContactNormalizer, the CSV import page works.
(Issue 22's staff features, typed editors, views, columns, whole-list actions and org scoping, are
in test_admin_staff.py.)"""

import csv
import io

import pytest
from django.urls import reverse

from contacts.admin import CappedCountPaginator
from contacts.models import Contact, Opportunity, SmartListView
from contacts.testing import make_contact, make_contacts
from customization.models import CustomField, Tag

pytestmark = pytest.mark.django_db


@pytest.fixture
def ada(org_a):
    return make_contact(
        org=org_a,
        first_name="Ada",
        last_name="Lovelace",
        name="Ada Lovelace",
        email="ada@example.com",
        tags=["vip"],
        source="webinar",
        search_text="ada lovelace ada@example.com",
    )


def form_data(contact, **changes):
    data = {
        "org": contact.org_id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "name": contact.name,
        "email": contact.email or "",
        "phone": contact.phone or "",
        "company": contact.company,
        "source": contact.source,
        "notes": contact.notes,
        "tags": ", ".join(contact.tags),
        "assigned_to": "",
        "opportunities-TOTAL_FORMS": "0",
        "opportunities-INITIAL_FORMS": "0",
        "opportunities-MIN_NUM_FORMS": "0",
        "opportunities-MAX_NUM_FORMS": "1000",
    }
    if contact.dnc:
        data["dnc"] = "on"
    data.update(changes)
    return data


def test_changelist_loads_with_filters_and_search(staff, ada, org_a):
    for query in ["", "?q=lovelace", f"?org={org_a.id}", "?tag=vip", "?source=webinar", "?dnc=yes", "?o=1"]:
        response = staff.get(f"/admin/contacts/contact/{query}")
        assert response.status_code == 200, query
    assert b"Ada Lovelace" in staff.get("/admin/contacts/contact/?q=LOVELACE").content
    assert b"Ada Lovelace" not in staff.get("/admin/contacts/contact/?q=nobody").content
    assert b"Ada Lovelace" not in staff.get("/admin/contacts/contact/?tag=other").content
    assert b"Import CSV" in staff.get("/admin/contacts/contact/").content


def test_change_page_loads_with_opportunities_inline(staff, ada):
    Opportunity.objects.create(org=ada.org, contact=ada, name="Annual plan")
    response = staff.get(f"/admin/contacts/contact/{ada.id}/change/")
    assert response.status_code == 200
    assert b"Annual plan" in response.content and b"vip" in response.content


def test_save_normalizes_through_contact_normalizer(staff, ada, org_a):
    CustomField.objects.create(
        org=org_a, key="plan", name="Plan", data_type="single_select", options=["Gold", "Silver"]
    )
    response = staff.post(
        f"/admin/contacts/contact/{ada.id}/change/",
        form_data(
            ada,
            phone="(415) 555-2671",
            tags="VIP; New Tag",
            company="Engines",
            custom__plan="gold",
            first_name="Augusta",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    ada.refresh_from_db()
    assert ada.phone == "+14155552671" and ada.tags == ["new tag", "vip"] and ada.custom == {"plan": "Gold"}
    assert ada.name == "Augusta Lovelace" and ada.search_text == "augusta lovelace ada@example.com engines 14155552671"
    assert Tag.objects.for_org(org_a.id).filter(name="new tag").exists()


def test_invalid_values_are_form_errors(staff, ada, org_a):
    CustomField.objects.create(org=org_a, key="seats", name="Seats", data_type="number")
    response = staff.post(
        f"/admin/contacts/contact/{ada.id}/change/", form_data(ada, email="not-an-email", custom__seats="many")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "email" in errors and errors["custom__seats"] == ["'many' is not a number."]
    ada.refresh_from_db()
    assert ada.email == "ada@example.com"


def test_add_contact_splits_name_and_rejects_duplicate_email(staff, ada, org_a):
    blank = Contact(org=org_a)
    response = staff.post(
        "/admin/contacts/contact/add/", form_data(blank, name="Grace Hopper", email="grace@example.com", tags="")
    )
    assert response.status_code == 302
    grace = Contact.objects.get(email="grace@example.com")
    assert (grace.first_name, grace.last_name) == ("Grace", "Hopper")
    duplicate = staff.post("/admin/contacts/contact/add/", form_data(blank, name="X", email="ADA@example.com"))
    assert duplicate.status_code == 200
    assert Contact.objects.filter(org=org_a).count() == 2


def test_other_admin_pages_load(staff, ada):
    deal = Opportunity.objects.create(org=ada.org, contact=ada, name="Deal")
    view = SmartListView.objects.create(org=ada.org, name="VIPs")
    for url in [
        "/admin/contacts/opportunity/",
        f"/admin/contacts/opportunity/{deal.id}/change/",
        "/admin/contacts/smartlistview/",
        f"/admin/contacts/smartlistview/{view.id}/change/",
        "/admin/contacts/contact/add/",
    ]:
        assert staff.get(url).status_code == 200, url


def test_capped_paginator_estimates_past_the_cap(ada, org_a, monkeypatch):
    make_contacts(org_a, [{"name": f"c{i}"} for i in range(30)])
    monkeypatch.setattr(CappedCountPaginator, "CAP", 10)
    assert CappedCountPaginator(Contact.objects.all(), 5).count >= 10
    monkeypatch.setattr(CappedCountPaginator, "CAP", 100)
    assert CappedCountPaginator(Contact.objects.all(), 5).count == 31


def test_import_page_imports_a_csv_and_shows_the_report(staff, org_a, ada):
    page = staff.get("/admin/contacts/contact/import/")
    assert page.status_code == 200
    upload = io.BytesIO(
        "\ufeffemail,name,tags\r\nada@example.com,,new\r\ngrace@example.com,Grace Hopper,\r\nbad,,\r\n".encode()
    )
    upload.name = "people.csv"
    response = staff.post(
        "/admin/contacts/contact/import/",
        {"org": org_a.id, "file": upload, "dedupe_on": "email_or_phone", "on_duplicate": "update", "tags": "admin"},
    )
    assert response.status_code == 200
    report = response.context["report"]
    assert (report["created"], report["updated"], report["failed"]) == (1, 1, 1)
    assert b"import-errors" in response.content
    ada.refresh_from_db()
    assert ada.tags == ["admin", "new", "vip"]
    assert Contact.objects.get(email="grace@example.com").tags == ["admin"]


def test_import_page_rejects_unknown_org_and_bad_files(staff, org_a):
    upload = io.BytesIO("name\nJosé\n".encode("latin-1"))
    upload.name = "latin.csv"
    response = staff.post(
        "/admin/contacts/contact/import/",
        {"org": org_a.id, "file": upload, "dedupe_on": "email", "on_duplicate": "skip"},
    )
    assert response.status_code == 200 and "file" in response.context["form"].errors
    response = staff.post(
        "/admin/contacts/contact/import/", {"org": 999999, "dedupe_on": "email", "on_duplicate": "skip"}
    )
    assert "org" in response.context["form"].errors
    assert not Contact.objects.exists()


def test_import_page_needs_staff(client):
    assert client.get("/admin/contacts/contact/import/").status_code == 302


def test_export_selected_streams_the_apis_export(staff, ada, org_a, org_b):

    grace = make_contact(org=org_a, name="Grace", email="grace@example.com", company="=cmd")
    url = reverse("admin:contacts_contact_changelist")
    response = staff.post(url, {"action": "export_selected", "_selected_action": [ada.pk, grace.pk]})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["id"], r["email"], r["tags"]) for r in rows] == [
        (str(grace.pk), "grace@example.com", ""),
        (str(ada.pk), "ada@example.com", "vip"),
    ]
    assert rows[0]["company"] == "'=cmd"

    other = make_contact(org=org_b, name="Other", email="other@example.com")
    mixed = staff.post(url, {"action": "export_selected", "_selected_action": [ada.pk, other.pk]}, follow=True)
    assert "one organization at a time" in mixed.content.decode()
    assert Contact.objects.count() == 3


def test_bulk_change_starts_the_apis_bulk_job_on_the_selection(staff, ada, org_a, org_b, alice):
    from jobs.models import Job
    from jobs.tests.helpers import run_jobs

    grace = make_contact(org=org_a, name="Grace", email="grace@example.com")
    untouched = make_contact(org=org_a, name="Untouched")
    url = reverse("admin:contacts_contact_changelist")
    selected = {"action": "bulk_change", "_selected_action": [ada.pk, grace.pk]}
    form = staff.post(url, selected)
    assert form.status_code == 200
    page = form.content.decode()
    assert "Change 2 selected contacts of" in page and 'name="apply"' in page

    refused = staff.post(url, {**selected, "apply": "1", "operation": "set", "field": "dnc", "value": "maybe"})
    assert refused.status_code == 200 and "action.set.dnc" in refused.content.decode()
    assert not Job.objects.exists()

    started = staff.post(url, {**selected, "apply": "1", "operation": "add_tags", "tags": "Gala, vip"})
    job = Job.objects.get()
    assert started.status_code == 302 and started["Location"] == reverse("admin:jobs_job_change", args=[job.pk])
    assert (job.kind, job.params["staff"], job.params["expected_count"]) == ("bulk", True, 2)
    run_jobs()
    assert Contact.objects.get(pk=grace.pk).tags == ["gala", "vip"]
    assert Contact.objects.get(pk=ada.pk).tags == ["gala", "vip"]
    assert Contact.objects.get(pk=untouched.pk).tags == []

    staff.post(url, {**selected, "apply": "1", "operation": "assign_to", "assignee": alice.user.pk})
    run_jobs()
    assert set(Contact.objects.filter(pk__in=[ada.pk, grace.pk]).values_list("assigned_to_id", flat=True)) == {
        alice.user.pk
    }

    other = make_contact(org=org_b, name="Other")
    mixed = staff.post(url, {"action": "bulk_change", "_selected_action": [ada.pk, other.pk]}, follow=True)
    assert "one organization at a time" in mixed.content.decode()
