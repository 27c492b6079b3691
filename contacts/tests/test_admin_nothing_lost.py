"""The admin's "nothing is lost" pages (DESIGN §4) through HTTP as a superuser: the trash (restore,
purge), a contact's history from every source, merge from the contact list, the duplicates page."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from contacts.models import Contact, DuplicateDismissal, TrashedContact
from contacts.testing import make_contact, make_contacts
from contacts.trash import move_to_trash

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/contacts/contact/"
TRASH = "/admin/contacts/contact/trash/"
MERGE = "/admin/contacts/contact/merge/"
DUPLICATES = "/admin/contacts/contact/duplicates/"


@pytest.fixture
def ada(org_a):
    return make_contact(org=org_a, name="Ada Lovelace", email="ada@example.com", company="Engines", tags=["vip"])


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def trash_row(contact_id: int) -> TrashedContact | None:
    return TrashedContact.objects.filter(contact_id=contact_id).first()


# --- trash ---


def test_deleting_a_contact_in_the_admin_moves_it_to_the_trash_and_says_so(staff, ada):
    page = staff.get(f"{CHANGELIST}{ada.id}/delete/")
    assert page.status_code == 200 and b"move it to the trash" in page.content
    response = staff.post(f"{CHANGELIST}{ada.id}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert not Contact.objects.filter(pk=ada.id).exists()
    assert trash_row(ada.id).deleted_by.username == "root"
    assert any("moved to the trash" in text for text in texts(response))


def test_deleting_selected_contacts_asks_to_move_them_to_the_trash(staff, ada, org_a):
    other = make_contact(org=org_a, name="Grace Hopper")
    body = {"action": "delete_selected", "_selected_action": [ada.id, other.id]}
    assert b"move them to the trash" in staff.post(CHANGELIST, body).content
    staff.post(CHANGELIST, {**body, "post": "yes"})
    assert trash_row(ada.id) and trash_row(other.id)


def test_trash_lists_filters_and_restores_whole(staff, ada, org_a, org_b):
    move_to_trash(org_a.id, [ada.id], deleted_by=None)
    elsewhere = make_contact(org=org_b, name="Charles Babbage")
    move_to_trash(org_b.id, [elsewhere.id], deleted_by=None)
    page = staff.get(TRASH)
    assert page.status_code == 200 and b"Ada Lovelace" in page.content and b"Charles Babbage" in page.content
    assert b"Charles Babbage" not in staff.get(f"{TRASH}?org={org_a.id}").content
    assert b"Ada Lovelace" not in staff.get(f"{TRASH}?q=babbage").content

    response = staff.post(TRASH, {"action": "restore", "ids": [ada.id]}, follow=True)
    assert "Restored 1 contacts." in texts(response)
    restored = Contact.objects.get(pk=ada.id)
    assert restored.tags == ["vip"] and restored.email == "ada@example.com"
    assert trash_row(ada.id) is None and trash_row(elsewhere.id) is not None


def test_restore_reports_a_contact_whose_email_was_taken_with_a_link(staff, ada, org_a):
    move_to_trash(org_a.id, [ada.id], deleted_by=None)
    taker = make_contact(org=org_a, name="Another Ada", email="ADA@example.com")
    response = staff.post(TRASH, {"action": "restore", "ids": [ada.id]}, follow=True)
    (warning,) = texts(response)
    assert f"Contact #{ada.id} stays in the trash" in warning
    assert reverse("admin:contacts_contact_change", args=[taker.id]) in warning
    assert trash_row(ada.id) is not None

    response = staff.post(TRASH, {"action": "restore_into", "ids": [ada.id]}, follow=True)
    (success,) = texts(response)
    assert f"Contact #{ada.id} restored into" in success and "merge #" in success
    assert trash_row(ada.id).merged_into == taker.id
    assert sorted(Contact.objects.get(pk=taker.id).tags) == ["vip"]


def test_purge_asks_first_then_deletes_the_trash_row(staff, ada, org_a):
    move_to_trash(org_a.id, [ada.id], deleted_by=None)
    confirm = staff.post(TRASH, {"action": "purge", "ids": [ada.id]})
    assert confirm.status_code == 200 and b"Purge these contacts for good?" in confirm.content
    assert trash_row(ada.id) is not None
    response = staff.post(TRASH, {"action": "purge", "ids": [ada.id], "post": "yes"}, follow=True)
    assert "Purged 1 contacts for good." in texts(response)
    assert trash_row(ada.id) is None


# --- history ---


def test_history_lists_api_and_admin_changes_with_before_and_after(staff, alice):
    created = alice.client.post("/api/v1/contacts", {"name": "Ada Lovelace", "company": "Engines"}, format="json")
    contact_id = created.json()["id"]
    alice.client.patch(f"/api/v1/contacts/{contact_id}", {"company": "Analytical"}, format="json")
    contact = Contact.objects.get(pk=contact_id)
    form = {
        "org": contact.org_id, "first_name": contact.first_name, "last_name": contact.last_name,
        "name": contact.name, "email": "", "phone": "", "company": "Difference", "source": "", "notes": "",
        "tags": "", "custom": "{}", "assigned_to": "", "opportunities-TOTAL_FORMS": "0",
        "opportunities-INITIAL_FORMS": "0", "opportunities-MIN_NUM_FORMS": "0", "opportunities-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    assert staff.post(f"{CHANGELIST}{contact_id}/change/", form).status_code == 302

    page = staff.get(f"{CHANGELIST}{contact_id}/history/")
    assert page.status_code == 200
    rows = [(r["change"].source, r["change"].event, r["fields"]) for r in page.context["rows"]]
    assert rows[0] == ("admin", "updated", [("company", "Analytical", "Difference")])
    assert rows[1] == ("api", "updated", [("company", "Engines", "Analytical")])
    assert rows[2][:2] == ("api", "created")
    html = page.content.decode()
    assert "Engines → Analytical" in html and "Analytical → Difference" in html and "root" in html


def test_history_of_a_trashed_contact_pages_with_the_more_link(staff, ada, org_a, monkeypatch):
    monkeypatch.setattr("contacts.admin.nothing_lost.HISTORY_PAGE", 1)
    staff.post(TRASH, {"action": "restore", "ids": [ada.id]})  # nothing to restore: no entry
    move_to_trash(org_a.id, [ada.id], deleted_by=None)
    page = staff.get(f"{CHANGELIST}{ada.id}/history/")
    assert page.status_code == 200 and b"is in the" in page.content
    ((change, more),) = [(r["change"], page.context["more"]) for r in page.context["rows"]]
    assert change.event == "trashed" and more == change.id
    older = staff.get(f"{CHANGELIST}{ada.id}/history/?before={more}")
    assert [r["change"].event for r in older.context["rows"]] == ["created"]
    assert staff.get(f"{CHANGELIST}999999999/history/").status_code == 404


# --- merge ---


def merge_pair(org):
    older, newer = make_contacts(
        org,
        [
            {"name": "Ada Lovelace", "email": "ada@example.com", "company": "Engines", "tags": ["vip"]},
            {"name": "A. Lovelace", "email": "ada@analytical.example", "phone": "+442079460958", "tags": ["lead"]},
        ],
    )
    return older, newer


def test_merge_action_opens_the_page_and_a_post_merges_with_the_chosen_winners(staff, org_a):
    older, newer = merge_pair(org_a)
    response = staff.post(CHANGELIST, {"action": "merge_selected", "_selected_action": [older.id, newer.id]})
    assert response.status_code == 302
    page = staff.get(response["Location"])
    assert page.status_code == 200 and b"ada@analytical.example" in page.content and b"Engines" in page.content

    body = {"ids": f"{older.id},{newer.id}", "survivor": older.id, "prefer.email": newer.id, "prefer.name": ""}
    done = staff.post(MERGE, body)
    assert done.status_code == 302 and done["Location"] == reverse("admin:contacts_contact_change", args=[older.id])
    (message,) = texts(done)
    assert "merge #" in message
    survivor = Contact.objects.get(pk=older.id)
    assert (survivor.name, survivor.email, survivor.phone) == (
        "Ada Lovelace",
        "ada@analytical.example",
        "+442079460958",
    )
    assert sorted(survivor.tags) == ["lead", "vip"]
    assert trash_row(newer.id).merged_into == older.id


def test_merge_action_refuses_one_contact_or_two_orgs(staff, ada, org_b):
    response = staff.post(CHANGELIST, {"action": "merge_selected", "_selected_action": [ada.id]}, follow=True)
    assert any("Select 2 to" in text for text in texts(response))
    other = make_contact(org=org_b, name="Elsewhere")
    response = staff.post(CHANGELIST, {"action": "merge_selected", "_selected_action": [ada.id, other.id]}, follow=True)
    assert any("one organization at a time" in text for text in texts(response))


def test_a_merge_error_is_a_message_not_a_500(staff, org_a):
    older, newer = merge_pair(org_a)
    stranger = make_contact(org=org_a, name="Not involved")
    body = {"ids": f"{older.id},{newer.id}", "survivor": older.id, "prefer.email": stranger.id}
    response = staff.post(MERGE, body)
    assert response.status_code == 200
    (message,) = texts(response)
    assert message.startswith("Nothing was merged") and "prefer.email" in message
    assert Contact.objects.filter(pk=newer.id).exists()
    move_to_trash(org_a.id, [newer.id], deleted_by=None)  # merged or deleted meanwhile
    response = staff.post(MERGE, {**body, "prefer.email": ""}, follow=True)
    assert response.status_code == 200 and any("No live contacts" in text for text in texts(response))


# --- duplicates ---


def test_duplicates_page_lists_a_group_links_its_merge_and_dismiss_hides_it(staff, org_a):
    first, second = make_contacts(
        org_a, [{"name": "Ada", "phone": "+442079460958"}, {"name": "Countess", "phone": "+442079460958"}]
    )
    assert staff.get(DUPLICATES).status_code == 200  # no org chosen yet
    page = staff.get(f"{DUPLICATES}?org={org_a.id}")
    assert page.status_code == 200
    (group,) = page.context["groups"]
    assert group["group"].ids == [first.id, second.id] and group["group"].reasons == ["phone"]
    assert f"{MERGE}?ids={first.id},{second.id}".encode() in page.content
    assert staff.get(f"{MERGE}?ids={first.id},{second.id}").status_code == 200

    response = staff.post(f"{DUPLICATES}dismiss/", {"org": org_a.id, "ids": group["ids"]})
    assert response.status_code == 302
    assert DuplicateDismissal.objects.filter(org_id=org_a.id, ids=[first.id, second.id]).exists()
    assert staff.get(f"{DUPLICATES}?org={org_a.id}").context["groups"] == []


# --- sanity: every page with a few hundred contacts ---


def test_every_new_page_answers_200_with_a_few_hundred_contacts(staff, org_a):
    rows = [
        {"name": f"Person {n}", "email": f"p{n}@example.com", "phone": f"+4420794{n % 150:05d}"} for n in range(400)
    ]
    contacts = make_contacts(org_a, rows)
    move_to_trash(org_a.id, [c.id for c in contacts[:150]], deleted_by=None)
    live = contacts[150:]
    for url in [
        TRASH, f"{TRASH}?org={org_a.id}", f"{TRASH}?p=3", f"{TRASH}?q=person",
        f"{CHANGELIST}{live[0].id}/history/", f"{CHANGELIST}{contacts[0].id}/history/",
        f"{MERGE}?ids={','.join(str(c.id) for c in live[:11])}",
        f"{DUPLICATES}?org={org_a.id}", CHANGELIST,
    ]:  # fmt: skip
        assert staff.get(url).status_code == 200, url
    assert len(staff.get(f"{DUPLICATES}?org={org_a.id}").context["groups"]) == 20
