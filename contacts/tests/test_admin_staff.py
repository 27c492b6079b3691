"""The admin for sales-ops staff (issue 22), through the test client: typed custom-field editors
by folder, custom-field columns and filters, saved views as one-click filters and validated by the
search compiler, actions on the ticked contacts or the whole filtered list (jobs of contacts.bulk,
contacts.export), readable columns, no internal fields, a duplicate email linking to the contact,
the history panel, and staff who are not superusers reaching only their organizations."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from contacts.models import Contact, SmartListView, TrashedContact
from contacts.services import set_custom_values
from contacts.testing import make_contact
from customization.models import CustomField, CustomFieldFolder, CustomValue, Tag
from jobs.models import Job
from jobs.tests.helpers import run_jobs
from orgs.models import Membership

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/contacts/contact/"


@pytest.fixture
def fields(org_a):
    """Org A's custom fields: a "Billing" folder, a "Profile" folder and one unfiled field."""
    billing = CustomFieldFolder.objects.create(org=org_a, name="Billing", position=0)
    profile = CustomFieldFolder.objects.create(org=org_a, name="Profile", position=1)
    specs = [
        ("plan", "Plan", "single_select", billing, ["Gold", "Silver"]),
        ("renewal", "Renewal", "date", billing, []),
        ("seats", "Seats", "number", billing, []),
        ("paying", "Paying", "boolean", billing, []),
        ("channels", "Channels", "multi_select", profile, ["Email", "SMS", "Phone"]),
        ("call_at", "Call at", "datetime", profile, []),
        ("nickname", "Nickname", "text", None, []),
    ]
    return {
        key: CustomField.objects.create(
            org=org_a, key=key, name=name, data_type=data_type, folder=folder, options=options, position=i
        )
        for i, (key, name, data_type, folder, options) in enumerate(specs)
    }


@pytest.fixture
def ada(org_a, fields):
    return make_contact(
        org=org_a, name="Ada Lovelace", email="ada@example.com", phone="+14155552671", tags=["vip"],
        custom={"plan": "Gold", "seats": 12},
    )  # fmt: skip


def form_data(contact, **changes) -> dict:
    """The change form as the browser posts it, unchanged but for `changes` (custom values: custom__<key>)."""
    data = {
        "first_name": contact.first_name, "last_name": contact.last_name, "name": contact.name,
        "email": contact.email or "", "phone": contact.phone or "", "company": contact.company,
        "source": contact.source, "notes": contact.notes, "tags": ", ".join(contact.tags),
        "assigned_to": contact.assigned_to_id or "",
        "opportunities-TOTAL_FORMS": "0", "opportunities-INITIAL_FORMS": "0",
        "opportunities-MIN_NUM_FORMS": "0", "opportunities-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    custom = contact.custom
    for key, value in custom.items():
        data[f"custom__{key}"] = value if isinstance(value, list) else str(value)
    if custom.get("paying") is not None:
        data["custom__paying"] = "true" if custom["paying"] else "false"
    if contact.dnc:
        data["dnc"] = "on"
    # What the browser sends back: the values the form was opened with (show_hidden_initial).
    data.update({f"initial-{name}": value for name, value in list(data.items()) if not name.startswith("opp")})
    data.update(changes)
    return data


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def page_of(response) -> str:
    return response.content.decode()


def listed(response) -> list[int]:
    return sorted(contact.pk for contact in response.context["cl"].result_list)


def staff_client(email: str, org, role=Membership.Role.MEMBER, scope=Membership.DataScope.ALL) -> Client:
    """A logged-in staff user who is not a superuser, member of `org`."""
    user = get_user_model().objects.create_user(email, email, "pw-for-tests", is_staff=True)
    Membership.objects.create(org=org, user=user, role=role, data_scope=scope)
    client = Client()
    client.force_login(user)
    client.user = user
    return client


# --- typed custom-field editors --------------------------------------------------------------------


def test_change_form_has_a_typed_editor_per_custom_field_grouped_by_folder(staff, ada):
    page = page_of(staff.get(f"{CHANGELIST}{ada.pk}/change/"))
    headings = re.findall(r"<h2[^>]*>([^<]+)</h2>", page)
    assert headings.index("Billing") < headings.index("Profile") < headings.index("Other custom fields")
    assert re.search(r'<input type="date" name="custom__renewal"', page)
    assert re.search(r'<input type="datetime-local" name="custom__call_at"', page)
    assert re.search(r'<input type="number" name="custom__seats" value="12" step="any"', page)
    assert re.search(r'<option value="Gold" selected>Gold</option>', page)
    assert re.search(r'<input type="checkbox" name="custom__channels" value="SMS"', page)
    assert re.search(r'<select name="custom__paying"', page) and '<option value="true">Yes</option>' in page
    assert 'name="custom"' not in page  # no raw JSON textarea any more


def test_typed_edits_are_stored_in_canonical_form_by_the_registry(staff, ada, org_a):
    response = staff.post(
        f"{CHANGELIST}{ada.pk}/change/",
        form_data(
            ada, custom__plan="silver", custom__renewal="2026-03-15", custom__seats="1,200",
            custom__paying="true", custom__channels=["SMS", "Email"], custom__call_at="2026-03-15T09:30",
            custom__nickname="  Countess ",
        ),
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    ada.refresh_from_db()
    assert ada.custom == {
        "plan": "Silver", "renewal": "2026-03-15", "seats": 1200, "paying": True, "channels": ["SMS", "Email"],
        "call_at": "2026-03-15T09:30:00.000000Z", "nickname": "Countess",
    }  # fmt: skip


def test_emptying_an_editor_clears_the_value(staff, ada):
    response = staff.post(f"{CHANGELIST}{ada.pk}/change/", form_data(ada, custom__plan=""))
    assert response.status_code == 302
    ada.refresh_from_db()
    assert ada.custom == {"seats": 12}


def test_invalid_values_are_shown_on_their_editor_with_the_registrys_message(staff, ada):
    response = staff.post(
        f"{CHANGELIST}{ada.pk}/change/",
        form_data(ada, custom__seats="a dozen", custom__renewal="2026-02-30", custom__plan="Platinum"),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["custom__seats"] == ["'a dozen' is not a number."]
    assert errors["custom__renewal"] == ["'2026-02-30' is not a valid calendar date."]
    assert "is not one of the options: Gold, Silver" in errors["custom__plan"][0]
    ada.refresh_from_db()
    assert ada.custom == {"plan": "Gold", "seats": 12}


def test_a_save_writes_only_the_values_changed_on_the_form(staff, ada):
    """Another writer changed a value after the form was opened: saving the form keeps it."""
    posted = form_data(ada, company="Analytical Engines")
    set_custom_values(ada, {"seats": 40}, {"seats": CustomField.objects.get(key="seats")})
    assert staff.post(f"{CHANGELIST}{ada.pk}/change/", posted).status_code == 302
    ada.refresh_from_db()
    assert ada.company == "Analytical Engines" and ada.custom["seats"] == 40


def test_a_new_contact_of_a_chosen_org_gets_its_custom_editors(staff, fields, org_a, org_b):
    assert "custom__plan" not in page_of(staff.get(f"{CHANGELIST}add/"))  # two orgs: none chosen yet
    page = page_of(staff.get(f"{CHANGELIST}add/?org={org_a.pk}"))
    assert 'name="custom__plan"' in page
    response = staff.post(
        f"{CHANGELIST}add/?org={org_a.pk}",
        {**form_data(Contact(org=org_a), name="Grace Hopper", custom__plan="Gold"), "org": org_a.pk},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    grace = Contact.objects.get(name="Grace Hopper")
    assert grace.custom == {"plan": "Gold"} and (grace.first_name, grace.last_name) == ("Grace", "Hopper")


# --- readable columns, no internal fields, duplicate email --------------------------------------------


def test_the_list_shows_readable_dnc_and_phone_and_no_internal_fields(staff, ada, org_a):
    blocked = make_contact(org=org_a, name="Blocked Person", dnc=True)
    page = page_of(staff.get(f"{CHANGELIST}?org={org_a.pk}"))
    assert "+1 415-555-2671" in page
    assert page.count('class="dnc-badge"') == 1 and "Do not contact" in page
    assert "icon-no.svg" not in page and "icon-yes.svg" not in page
    change = page_of(staff.get(f"{CHANGELIST}{blocked.pk}/change/"))
    for internal in ("search_text", "Search text", "email_key", "Email key", 'name="folded"'):
        assert internal not in page and internal not in change, internal


def test_the_org_column_shows_while_the_list_mixes_orgs(staff, ada, org_a, org_b):
    make_contact(org=org_b, name="Charles Babbage")
    mixed = page_of(staff.get(CHANGELIST))
    assert "column-organization" in mixed and "Org B" in mixed
    assert "column-organization" not in page_of(staff.get(f"{CHANGELIST}?org={org_a.pk}"))


def test_a_duplicate_email_links_to_the_contact_that_has_it(staff, ada, org_a):
    response = staff.post(
        f"{CHANGELIST}add/?org={org_a.pk}",
        {**form_data(Contact(org=org_a), name="Other Ada", email="ADA@example.com"), "org": org_a.pk},
    )
    assert response.status_code == 200
    (error,) = response.context["adminform"].form.errors["email"]
    assert f'href="/admin/contacts/contact/{ada.pk}/change/"' in error and "Ada Lovelace" in error
    assert "Constraint" not in page_of(response)
    assert f'<a href="/admin/contacts/contact/{ada.pk}/change/">Ada Lovelace</a>' in page_of(response)


# --- custom-field columns and filters -----------------------------------------------------------------


def test_custom_fields_are_optional_columns_kept_in_the_list_links(staff, ada, org_a):
    make_contact(org=org_a, name="Grace Hopper", custom={"plan": "Silver"})
    response = staff.get(f"{CHANGELIST}?org={org_a.pk}&columns=custom.plan,custom.seats")
    page = page_of(response)
    assert response.status_code == 200
    assert re.search(r'<th scope="col" class="sortable column-custom_plan">.*?Plan', page, re.S)
    assert ">Gold</td>" in page and ">Silver</td>" in page and ">12</td>" in page
    assert "columns=custom.plan%2Ccustom.seats" in page  # the filters' links keep the columns
    chooser = re.search(r'<div id="column-chooser".*?</div>', page, re.S).group(0)
    assert "✓ Plan" in chooser and "Renewal" in chooser
    assert "Plan" not in re.findall(r"<th[^>]*>(.*?)</th>", page_of(staff.get(f"{CHANGELIST}?org={org_a.pk}")), re.S)


def test_a_number_field_filter_has_a_range_box_that_keeps_the_other_filters(staff, ada, org_a):
    make_contact(org=org_a, name="Grace", custom={"seats": 3})
    url = f"{CHANGELIST}?org={org_a.pk}&custom.plan=Gold&columns=custom.seats&custom.seats=10..20&p=1"
    page = page_of(staff.get(url))
    form = re.search(r'<form method="get" class="number-range-filter">(.*?)</form>', page, re.S).group(1)
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form))
    # The list's other filters and columns ride along; the page number and the box's own value do not.
    assert hidden == {"org": str(org_a.pk), "custom.plan": "Gold", "columns": "custom.seats"}
    assert re.search(r'name="custom\.seats" value="10\.\.20"', form)
    # What the box sends is the filter's own parameter; a value that is no range is named.
    assert listed(staff.get(CHANGELIST, {**hidden, "custom.seats": "10..20"})) == [ada.pk]
    response = staff.get(CHANGELIST, {**hidden, "custom.seats": "ten"})
    assert listed(response) == [] and "Not a filter value of Seats." in page_of(response)


def test_custom_columns_sort_by_their_values_as_the_api_sorts(staff, ada, org_a):
    grace = make_contact(org=org_a, name="Grace", custom={"seats": 3, "plan": "Silver"})
    linus = make_contact(org=org_a, name="Linus")  # no value: last when ascending
    base = f"{CHANGELIST}?org={org_a.pk}&columns=custom.seats,custom.plan,custom.channels"
    display = staff.get(base).context["cl"].list_display
    index = {getattr(column, "__name__", column): number for number, column in enumerate(display)}

    def order(sort: str) -> list[int]:
        return [contact.pk for contact in staff.get(f"{base}&o={sort}").context["cl"].result_list]

    assert order(str(index["custom_seats"])) == [grace.pk, ada.pk, linus.pk]
    assert order(f"-{index['custom_seats']}") == [linus.pk, ada.pk, grace.pk]
    assert order(str(index["custom_plan"])) == [ada.pk, grace.pk, linus.pk]  # Gold, Silver
    # A multi-select does not sort (as in the API): its header is no link.
    page = page_of(staff.get(base))
    assert f"o={index['custom_seats']}" in page and f"o={index['custom_channels']}" not in page


def test_an_unknown_column_is_named_not_silently_dropped(staff, ada, org_a):
    response = staff.get(f"{CHANGELIST}?org={org_a.pk}&columns=custom.nope")
    assert response.status_code == 200
    assert any("custom.nope" in text for text in texts(response))


def test_custom_fields_filter_the_list_through_the_search_compiler(staff, ada, org_a):
    grace = make_contact(org=org_a, name="Grace", custom={"plan": "Silver", "seats": 3, "paying": True})
    linus = make_contact(org=org_a, name="Linus", custom={"channels": ["SMS"]})
    base = f"{CHANGELIST}?org={org_a.pk}"
    assert listed(staff.get(f"{base}&custom.plan=Gold")) == [ada.pk]
    assert listed(staff.get(f"{base}&custom.paying=yes")) == [grace.pk]
    assert listed(staff.get(f"{base}&custom.seats=10..20")) == [ada.pk]
    assert listed(staff.get(f"{base}&custom.seats=..5")) == [grace.pk]
    assert listed(staff.get(f"{base}&custom.channels=SMS")) == [linus.pk]
    assert listed(staff.get(f"{base}&custom.plan=(empty)")) == [linus.pk]
    page = page_of(staff.get(base))
    assert 'href="?custom.plan=Gold&amp;org=' in page or "custom.plan=Gold" in page  # offered in the sidebar


# --- saved views --------------------------------------------------------------------------------------


@pytest.fixture
def gold_view(org_a, fields):
    return SmartListView.objects.create(
        org=org_a, name="Gold plan",
        query={"groups": [{"conditions": [{"field": "custom.plan", "op": "eq", "value": "Gold"}]}]},
        columns=["custom.seats"],
    )  # fmt: skip


def test_a_saved_view_filters_the_list_in_one_click(staff, ada, org_a, gold_view):
    make_contact(org=org_a, name="Grace", custom={"plan": "Silver"})
    response = staff.get(f"{CHANGELIST}?view={gold_view.pk}")
    assert response.status_code == 200  # not a redirect to ?e=1
    assert listed(response) == [ada.pk]
    page = page_of(response)
    assert "column-custom_seats" in page  # the view's own columns
    assert re.search(r'class="saved-view active"[^>]*>Gold plan</a>', page)
    bar = page_of(staff.get(f"{CHANGELIST}?org={org_a.pk}"))
    assert f"view={gold_view.pk}" in bar and "Save as a view" in bar


def test_a_saved_view_is_applied_as_the_api_applies_it(staff, ada, org_a, gold_view, alice):
    api = alice.client.get(f"/api/v1/contacts?view={gold_view.pk}").json()
    assert [c["id"] for c in api["results"]] == listed(staff.get(f"{CHANGELIST}?view={gold_view.pk}"))


def test_a_view_that_cannot_be_applied_says_why_and_lists_nothing(staff, ada, org_a):
    broken = SmartListView.objects.create(
        org=org_a, name="Broken", query={"groups": [{"conditions": [{"field": "custom.gone", "op": "is_empty"}]}]}
    )
    response = staff.get(f"{CHANGELIST}?view={broken.pk}")
    assert response.status_code == 200 and listed(response) == []
    assert any("No custom field 'custom.gone'" in text for text in texts(response))
    missing = staff.get(f"{CHANGELIST}?view=999999")
    assert missing.status_code == 200 and listed(missing) == []
    assert any("No saved view #999999" in text for text in texts(missing))


def test_saving_a_view_validates_its_query_with_the_search_compiler(staff, fields, org_a):
    body = {"org": org_a.pk, "name": "Nope", "q": "", "sort": "[]", "columns": "[]", "position": 0}
    query = '{"groups": [{"conditions": [{"field": "custom.nope", "op": "eq", "value": 1}]}]}'
    response = staff.post("/admin/contacts/smartlistview/add/", {**body, "query": query})
    assert response.status_code == 200
    (error,) = response.context["adminform"].form.errors["query"]
    assert "No custom field 'custom.nope' in this organization" in error
    assert not SmartListView.objects.exists()

    bad_op = '{"groups": [{"conditions": [{"field": "custom.seats", "op": "contains", "value": 1}]}]}'
    response = staff.post("/admin/contacts/smartlistview/add/", {**body, "query": bad_op})
    assert "contains does not apply to custom.seats" in response.context["adminform"].form.errors["query"][0]
    response = staff.post("/admin/contacts/smartlistview/add/", {**body, "query": "{}", "columns": '["custom.nope"]'})
    assert "columns" in response.context["adminform"].form.errors

    good = '{"groups": [{"conditions": [{"field": "custom.plan", "op": "eq", "value": "Gold"}]}]}'
    response = staff.post("/admin/contacts/smartlistview/add/", {**body, "name": "Gold", "query": good})
    assert response.status_code == 302
    assert SmartListView.objects.get().query == {
        "groups": [{"conditions": [{"field": "custom.plan", "op": "eq", "value": "Gold"}]}]
    }


def test_a_view_naming_itself_is_refused(staff, gold_view, org_a):
    itself = f'{{"groups": [{{"conditions": [{{"field": "view", "op": "in", "value": [{gold_view.pk}]}}]}}]}}'
    response = staff.post(
        f"/admin/contacts/smartlistview/{gold_view.pk}/change/",
        {"name": "Gold plan", "query": itself, "q": "", "sort": "[]", "columns": "[]", "position": 0},
    )
    assert response.status_code == 200
    assert "cycle" in response.context["adminform"].form.errors["query"][0]


def test_save_as_a_view_prefills_the_add_form_with_the_lists_filters(staff, ada, org_a):
    page = page_of(staff.get(f"{CHANGELIST}?org={org_a.pk}&tag=vip&columns=custom.plan"))
    url = re.search(r'<a href="([^"]+)" id="save-as-view"', page).group(1).replace("&amp;", "&")
    form = staff.get(url).context["adminform"].form
    assert form.initial["org"] == org_a.pk and form.initial["columns"] == ["custom.plan"]
    assert form.initial["query"] == {"groups": [{"conditions": [{"field": "tags", "op": "contains", "value": "vip"}]}]}


def test_setting_a_field_in_bulk_edits_the_value_with_that_fields_own_editor(staff, ada, org_a):
    grace = make_contact(org=org_a, name="Grace", custom={"plan": "Gold"})
    ticked = {"action": "bulk_change", "_selected_action": [ada.pk, grace.pk], "apply": "1", "operation": "set"}

    def editor(field: str) -> str:
        """The value's editor once `field` is chosen ("Show its editor"): nothing is started."""
        response = staff.post(CHANGELIST, {**ticked, "field": field, "pick": "1"})
        assert response.status_code == 200 and not Job.objects.exists()
        page = page_of(response)
        assert re.search(rf'<option value="{re.escape(field)}" selected>', page)  # the choice is kept
        return page

    select = r'<select name="value"[^>]*>\s*<option value="" selected>—</option>\s*<option value="Gold">'
    assert re.search(select, editor("custom.plan"))
    assert 'type="checkbox" name="value" value="SMS"' in editor("custom.channels")
    assert 'type="date" name="value"' in editor("custom.renewal")
    assert '<option value="true">Yes</option>' in editor("dnc")
    assert '<input type="text" name="value"' in editor("company")  # a text field keeps the text box

    staff.post(CHANGELIST, {**ticked, "field": "custom.channels", "value": ["Email", "SMS"]})
    staff.post(CHANGELIST, {**ticked, "field": "custom.plan", "value": "Silver"})
    assert run_jobs() == 2
    for contact in (ada, grace):
        custom = Contact.objects.get(pk=contact.pk).custom
        assert (custom["plan"], custom["channels"]) == ("Silver", ["Email", "SMS"])


# --- actions on the ticked contacts or the whole filtered list ---------------------------------------


@pytest.fixture
def crowd(org_a, ada):
    """Ada (vip, Gold) plus five webinar contacts, two of them vip, and one contact elsewhere."""
    people = [make_contact(org=org_a, name=f"Webinar {i}", source="webinar", tags=["vip"] if i < 2 else [])
              for i in range(5)]  # fmt: skip
    return people


def test_tag_the_whole_filtered_list_as_a_job(staff, crowd, org_a, ada):
    url = f"{CHANGELIST}?org={org_a.pk}&source=webinar"
    ticked = {"_selected_action": [crowd[0].pk], "select_across": "1", "index": "0"}
    form = staff.post(url, {**ticked, "action": "tag_selected"})
    assert form.status_code == 200
    page = page_of(form)
    assert "all 5 contacts of the filtered list" in page and 'name="expected_count" value="5"' in page

    started = staff.post(url, {**ticked, "action": "tag_selected", "apply": "1", "expected_count": "5",
                               "operation": "add_tags", "tags": "Webinar-2026"})  # fmt: skip
    job = Job.objects.get()
    assert started.status_code == 302 and started["Location"] == reverse("admin:jobs_job_change", args=[job.pk])
    assert job.params["selection"]["query"] == {
        "groups": [{"conditions": [{"field": "source", "op": "eq", "value": "webinar"}]}]
    }
    assert (job.params["expected_count"], job.params["staff"]) == (5, True)
    run_jobs()
    tagged = {c.pk for c in Contact.objects.filter(org=org_a) if "webinar-2026" in c.tags}
    assert tagged == {c.pk for c in crowd}  # not Ada


def test_a_whole_list_job_on_a_list_that_changed_since_changes_nothing(staff, crowd, org_a):
    url = f"{CHANGELIST}?org={org_a.pk}&source=webinar"
    body = {"_selected_action": [crowd[0].pk], "select_across": "1", "index": "0", "action": "untag_selected",
            "apply": "1", "expected_count": "5", "operation": "remove_tags", "tags": "vip"}  # fmt: skip
    make_contact(org=org_a, name="Late", source="webinar", tags=["vip"])
    staff.post(url, body)
    run_jobs()
    job = Job.objects.get()
    assert job.status == Job.Status.FAILED and job.result["error"]["code"] == "count_changed"
    assert sum("vip" in c.tags for c in Contact.objects.filter(org=org_a)) == 4


def test_whole_list_with_a_saved_view_and_a_search_selects_what_the_list_shows(staff, crowd, org_a, ada):
    vip = {"groups": [{"conditions": [{"field": "tags", "op": "contains", "value": "vip"}]}]}
    view = SmartListView.objects.create(org=org_a, name="VIPs", query=vip)
    url = f"{CHANGELIST}?view={view.pk}&q=webinar"
    shown = listed(staff.get(url))
    assert shown == sorted(c.pk for c in crowd[:2])
    staff.post(url, {"_selected_action": shown[:1], "select_across": "1", "index": "0", "action": "assign_selected",
                     "apply": "1", "expected_count": "2", "operation": "assign_to", "assignee": ""})  # fmt: skip
    job = Job.objects.get()
    assert job.params["selection"]["q"] == "webinar"
    assert {"field": "view", "op": "in", "value": [view.pk]} in job.params["selection"]["query"]["groups"][0][
        "conditions"
    ]
    run_jobs()
    assert Job.objects.get().status == Job.Status.SUCCEEDED


def test_export_the_whole_filtered_list(staff, crowd, org_a, ada):
    response = staff.post(
        f"{CHANGELIST}?org={org_a.pk}&tag=vip",
        {"_selected_action": [ada.pk], "select_across": "1", "index": "0", "action": "export_selected"},
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(int(r["id"]) for r in rows) == sorted([ada.pk, crowd[0].pk, crowd[1].pk])
    assert "custom.plan" in rows[0]


def test_trash_the_whole_filtered_list_as_a_job_that_can_be_undone(staff, crowd, org_a, ada):
    url = f"{CHANGELIST}?org={org_a.pk}&source=webinar"
    body = {"_selected_action": [crowd[0].pk], "select_across": "1", "index": "0", "action": "delete_selected"}
    assert "all 5 contacts of the filtered list" in page_of(staff.post(url, body))
    staff.post(url, {**body, "apply": "1", "expected_count": "5", "operation": "trash"})
    run_jobs()
    assert TrashedContact.objects.filter(org=org_a).count() == 5 and Contact.objects.filter(org=org_a).count() == 1


def test_assign_the_ticked_contacts(staff, crowd, org_a, alice):
    body = {"_selected_action": [crowd[0].pk, crowd[1].pk], "action": "assign_selected", "index": "0"}
    form = page_of(staff.post(CHANGELIST, body))
    assert "Assign 2 selected contacts" in form and 'name="tags"' not in form
    staff.post(CHANGELIST, {**body, "apply": "1", "operation": "assign_to", "assignee": alice.user.pk})
    run_jobs()
    assert set(Contact.objects.filter(assigned_to=alice.user).values_list("pk", flat=True)) == {
        crowd[0].pk,
        crowd[1].pk,
    }


def test_whole_list_actions_need_one_org(staff, ada, org_a, org_b):
    other = make_contact(org=org_b, name="Elsewhere")
    response = staff.post(
        CHANGELIST, {"_selected_action": [ada.pk, other.pk], "select_across": "1", "index": "0",
                     "action": "tag_selected"}, follow=True,
    )  # fmt: skip
    assert any("one organization at a time" in text for text in texts(response))
    assert not Job.objects.exists()


# --- history panel, links to the other pages -----------------------------------------------------


def test_the_change_form_shows_the_latest_history_with_a_link_to_all_of_it(staff, ada):
    staff.post(f"{CHANGELIST}{ada.pk}/change/", form_data(ada, company="Engines"))
    page = page_of(staff.get(f"{CHANGELIST}{ada.pk}/change/"))
    panel = re.search(r'<fieldset class="module" id="history-panel">.*?</fieldset>', page, re.S).group(0)
    assert "company" in panel and "Engines" in panel and "admin" in panel
    assert reverse("admin:contacts_contact_history", args=[ada.pk]) in panel


def test_the_list_links_its_pages_for_the_org(staff, ada, org_a):
    page = page_of(staff.get(f"{CHANGELIST}?org={org_a.pk}"))
    for name in ("import", "duplicates", "trash"):
        assert f"{reverse(f'admin:contacts_contact_{name}')}?org={org_a.pk}" in page
    assert f"{CHANGELIST}add/?org={org_a.pk}" in page


# --- staff who are not superusers: only their organizations ------------------------------------------


@pytest.fixture
def org_b_world(org_b):
    """Org B's contact, tag, field, folder, view, value and trashed contact."""
    folder = CustomFieldFolder.objects.create(org=org_b, name="B folder")
    field = CustomField.objects.create(org=org_b, key="b_only", name="B only", data_type="text", folder=folder)
    contact = make_contact(org=org_b, name="Bea Secret", email="bea@b.test", tags=["b-tag"])
    trashed = make_contact(org=org_b, name="Bert Trashed")
    from contacts.trash import move_to_trash

    move_to_trash(org_b.pk, [trashed.pk], deleted_by=None)
    return {
        "contact": contact, "tag": Tag.objects.get(org=org_b, name="b-tag"), "field": field, "folder": folder,
        "view": SmartListView.objects.create(org=org_b, name="B view"), "trashed": trashed,
        "value": CustomValue.objects.create(org=org_b, key="b_value", value="x"),
    }  # fmt: skip


def test_a_staff_member_of_org_a_sees_only_org_a_everywhere(ada, org_a, org_b, org_b_world):
    member = staff_client("sam@a.test", org_a)
    listing = member.get(CHANGELIST)
    assert listing.status_code == 200 and listed(listing) == [ada.pk]
    assert "column-organization" not in page_of(listing)  # one org: no org column
    for url, foreign in [
        ("/admin/customization/tag/", "b-tag"),
        ("/admin/customization/customfield/", "b_only"),
        ("/admin/customization/customfieldfolder/", "B folder"),
        ("/admin/customization/customvalue/", "b_value"),
        ("/admin/contacts/smartlistview/", "B view"),
        ("/admin/contacts/opportunity/", "Bea"),
        ("/admin/contacts/contact/trash/", "Bert Trashed"),
        ("/admin/orgs/organization/", "Org B"),
        ("/admin/orgs/membership/", "Org B"),
        ("/admin/jobs/job/", "Org B"),
        ("/admin/", "Org B"),
    ]:
        response = member.get(url)
        assert response.status_code == 200, url
        assert foreign not in page_of(response), url


def test_a_staff_member_cannot_open_or_change_another_orgs_rows(ada, org_a, org_b, org_b_world):
    member = staff_client("sam@a.test", org_a)
    bea = org_b_world["contact"]
    for url in [
        f"{CHANGELIST}{bea.pk}/change/",
        f"/admin/customization/tag/{org_b_world['tag'].pk}/change/",
        f"/admin/customization/customfield/{org_b_world['field'].pk}/change/",
        f"/admin/contacts/smartlistview/{org_b_world['view'].pk}/change/",
        f"/admin/orgs/organization/{org_b.pk}/change/",
    ]:
        response = member.get(url, follow=True)  # Django's answer for a row that is not there
        assert response.redirect_chain and "doesn’t exist" in page_of(response), url
        assert "Bea Secret" not in page_of(response) and "B view" not in page_of(response), url
    assert member.get(f"{CHANGELIST}{org_b_world['trashed'].pk}/history/").status_code == 404
    assert member.get(f"{CHANGELIST}?org={org_b.pk}").context["cl"].result_count == 0
    assert listed(member.get(f"{CHANGELIST}?view={org_b_world['view'].pk}")) == []

    # Acting on them: a change posted, ticked contacts of org B, an add into org B.
    member.post(f"{CHANGELIST}{bea.pk}/change/", form_data(bea, company="Hacked"))
    member.post(CHANGELIST, {"_selected_action": [bea.pk], "action": "tag_selected", "index": "0", "apply": "1",
                             "operation": "add_tags", "tags": "hacked"})  # fmt: skip
    refused = member.post(f"{CHANGELIST}add/", {**form_data(Contact(org=org_b), name="Planted"), "org": org_b.pk})
    assert "org" in refused.context["adminform"].form.errors
    bea.refresh_from_db()
    assert bea.company == "" and bea.tags == ["b-tag"] and not Contact.objects.filter(name="Planted").exists()
    assert not Job.objects.exists()
    member.post(f"/admin/customization/tag/{org_b_world['tag'].pk}/delete/", {"post": "yes"})
    assert Tag.objects.filter(pk=org_b_world["tag"].pk).exists()


def test_autocompletes_and_switchers_offer_only_the_staff_members_orgs(ada, org_a, org_b, alice, charlie):
    member = staff_client("sam@a.test", org_a)
    orgs = member.get("/admin/autocomplete/", {"app_label": "contacts", "model_name": "contact",
                                               "field_name": "org", "term": "Org"}).json()  # fmt: skip
    assert [r["text"] for r in orgs["results"]] == [str(org_a)]
    people = member.get(reverse("admin:contacts_contact_assignees"), {"term": ""}).json()["results"]
    assert "alice@a.test" in [p["text"] for p in people] and "charlie@b.test" not in [p["text"] for p in people]
    assert member.get(reverse("admin:contacts_contact_assignees"), {"org": org_b.pk}).json()["results"] == []
    filters = member.get(CHANGELIST).context["cl"].filter_specs
    org_filter = next(spec for spec in filters if spec.parameter_name == "org")
    assert [label for _, label in org_filter.lookup_choices] == [str(org_a)]


def test_an_assigned_only_staff_member_sees_only_their_contacts(ada, org_a):
    member = staff_client("carl@a.test", org_a, scope=Membership.DataScope.ASSIGNED)
    theirs = make_contact(org=org_a, name="Carl's", assigned_to=member.user)
    assert listed(member.get(CHANGELIST)) == [theirs.pk]
    assert "Ada" not in page_of(member.get(f"{CHANGELIST}{ada.pk}/change/", follow=True))


def test_roles_decide_what_staff_may_change(ada, org_a, fields):
    member = staff_client("sam@a.test", org_a)
    owner = staff_client("olga@a.test", org_a, role=Membership.Role.OWNER)
    tag = Tag.objects.get(org=org_a, name="vip")
    assert member.get(f"/admin/customization/tag/{tag.pk}/change/").context["has_change_permission"] is False
    assert member.get("/admin/customization/tag/add/").status_code == 403
    assert member.post(f"/admin/customization/tag/{tag.pk}/delete/", {"post": "yes"}).status_code == 403
    response = owner.post(f"/admin/customization/tag/{tag.pk}/change/", {"name": "VIP Gold"})
    assert response.status_code == 302
    tag.refresh_from_db()
    assert tag.name == "vip gold" and Contact.objects.get(pk=ada.pk).tags == ["vip gold"]
    # Every member works on contacts.
    assert member.post(f"{CHANGELIST}{ada.pk}/change/", form_data(ada, tags="vip gold, new")).status_code == 302


def test_staff_act_as_their_membership_and_superusers_as_owners(staff, ada, org_a):
    member = staff_client("sam@a.test", org_a)
    body = {"_selected_action": [ada.pk], "action": "tag_selected", "index": "0", "apply": "1",
            "operation": "add_tags", "tags": "x"}  # fmt: skip
    member.post(CHANGELIST, body)
    staff.post(CHANGELIST, body)
    by_member, by_root = Job.objects.order_by("id")
    assert (by_member.created_by, by_member.params["staff"]) == (member.user, False)
    assert by_root.params["staff"] is True
    job_page = member.get(reverse("admin:jobs_job_change", args=[by_member.pk]))
    assert job_page.status_code == 200 and "Cancel" in page_of(job_page)  # their job: followed and cancelled
    assert member.get(reverse("admin:jobs_job_change", args=[by_root.pk]), follow=True).redirect_chain  # not theirs
    run_jobs()
    assert "x" in Contact.objects.get(pk=ada.pk).tags


def test_a_staff_members_import_page_offers_only_their_orgs(org_a, org_b):
    member = staff_client("sam@a.test", org_a)
    choices = member.get("/admin/contacts/contact/import/").context["form"].fields["org"].queryset
    assert list(choices) == [org_a]


def test_a_parameter_no_filter_takes_lists_nothing_and_says_so(staff, ada, org_a):
    for query in ["foo=1", "custom.nope=1", "dnc__exact=1"]:
        response = staff.get(f"{CHANGELIST}?org={org_a.pk}&{query}")
        assert response.status_code == 200 and listed(response) == [], query  # not a redirect to ?e=1
        assert any(f"“{query.split('=')[0]}”" in text for text in texts(response)), query


def test_no_admin_page_shows_an_internal_column(staff, ada, org_a, gold_view):
    from django.apps import apps
    from django.contrib import admin as django_admin

    pages = [f"{CHANGELIST}{ada.pk}/change/", f"/admin/contacts/smartlistview/{gold_view.pk}/change/"]
    for model in (m for m in apps.get_models() if django_admin.site.is_registered(m)):
        opts = model._meta
        pages += [f"/admin/{opts.app_label}/{opts.model_name}/", f"/admin/{opts.app_label}/{opts.model_name}/add/"]
    for url in pages:
        response = staff.get(url)
        if response.status_code != 200:
            continue  # no add page (jobs, webhooks)
        page = page_of(response)
        for internal in ("search_text", "Search text", "email_key", "Email key", "name_key", "Name key", "Folded"):
            assert internal not in page, (url, internal)
