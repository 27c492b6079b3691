from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact, attach_tags_and_custom
from contacts.testing import make_contact, make_contacts
from customization.field_types import DATA_TYPES
from customization.models import CustomField, CustomFieldFolder

pytestmark = pytest.mark.django_db

FIELDS = "/api/v1/custom-fields"
FOLDERS = "/api/v1/custom-field-folders"


def create_field(actor, **body):
    return actor.client.post(FIELDS, body, format="json")


def first_error(response):
    return response.json()["errors"][0]


# --- folders ---------------------------------------------------------------------------


def test_owner_creates_folders_which_go_last(alice):
    first = alice.client.post(FOLDERS, {"name": "Qualification"}, format="json")
    second = alice.client.post(FOLDERS, {"name": "Billing"}, format="json")
    assert first.status_code == second.status_code == 201
    assert set(first.json()) == {"id", "name", "position", "created_at"}
    assert (first.json()["position"], second.json()["position"]) == (0, 1)
    names = [f["name"] for f in alice.client.get(FOLDERS).json()["results"]]
    assert names == ["Qualification", "Billing"]


def test_duplicate_folder_name_is_409_ignoring_case(alice):
    alice.client.post(FOLDERS, {"name": "Billing"}, format="json")
    response = alice.client.post(FOLDERS, {"name": "billing"}, format="json")
    assert response.status_code == 409
    assert first_error(response)["attr"] == "name"


def test_renaming_a_folder_onto_another_is_409(alice):
    alice.client.post(FOLDERS, {"name": "Billing"}, format="json")
    other = alice.client.post(FOLDERS, {"name": "Sales"}, format="json").json()
    response = alice.client.patch(f"{FOLDERS}/{other['id']}", {"name": "BILLING"}, format="json")
    assert response.status_code == 409
    ok = alice.client.patch(f"{FOLDERS}/{other['id']}", {"name": "Sales EMEA", "position": 7}, format="json")
    assert ok.status_code == 200 and ok.json()["position"] == 7


def test_deleting_a_folder_leaves_its_fields_unfiled(alice):
    folder = alice.client.post(FOLDERS, {"name": "Billing"}, format="json").json()
    field = create_field(alice, name="Plan", data_type="text", folder=folder["id"]).json()
    assert field["folder"] == folder["id"]
    assert alice.client.delete(f"{FOLDERS}/{folder['id']}").status_code == 204
    assert alice.client.get(f"{FIELDS}/{field['id']}").json()["folder"] is None


@pytest.mark.parametrize("actor", ["bob", "carol"])
def test_members_read_folders_but_cannot_write_them(request, alice, actor):
    member = request.getfixturevalue(actor)
    folder = CustomFieldFolder.objects.create(org=alice.org, name="Billing")
    assert member.client.get(FOLDERS).json()["count"] == 1
    assert member.client.post(FOLDERS, {"name": "X"}, format="json").status_code == 403
    assert member.client.patch(f"{FOLDERS}/{folder.id}", {"name": "X"}, format="json").status_code == 403
    assert member.client.delete(f"{FOLDERS}/{folder.id}").status_code == 403
    assert list(CustomFieldFolder.objects.values_list("name", flat=True)) == ["Billing"]


def test_other_org_cannot_see_or_touch_folders(alice, charlie):
    folder = CustomFieldFolder.objects.create(org=alice.org, name="Billing")
    assert charlie.client.get(FOLDERS).json()["count"] == 0
    assert charlie.client.get(f"{FOLDERS}/{folder.id}").status_code == 404
    assert charlie.client.patch(f"{FOLDERS}/{folder.id}", {"name": "X"}, format="json").status_code == 404
    assert charlie.client.delete(f"{FOLDERS}/{folder.id}").status_code == 404
    assert CustomFieldFolder.objects.get(pk=folder.pk).name == "Billing"


# --- fields: creation ------------------------------------------------------------------


@pytest.mark.parametrize("data_type", DATA_TYPES)
def test_every_data_type_can_be_defined(alice, data_type):
    options = ["Gold", "Silver"] if data_type.endswith("_select") else []
    response = create_field(alice, key=f"f_{data_type}", name=data_type, data_type=data_type, options=options)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {"id", "key", "name", "data_type", "folder", "options", "position"}
    assert (body["key"], body["data_type"], body["options"], body["folder"]) == (
        f"f_{data_type}",
        data_type,
        options,
        None,
    )


@pytest.mark.parametrize(
    ("name", "key"),
    [("Lead score", "lead_score"), ("Über Größe (2026)", "uber_groe_2026"), ("2nd phone", "nd_phone")],
)
def test_key_is_derived_from_the_name(alice, name, key):
    response = create_field(alice, name=name, data_type="text")
    assert response.status_code == 201
    assert response.json()["key"] == key


def test_name_without_letters_needs_an_explicit_key(alice):
    response = create_field(alice, name="2026", data_type="text")
    assert response.status_code == 422
    assert first_error(response)["attr"] == "key"


@pytest.mark.parametrize("key", ["Lead", "1abc", "_x", "a-b", "a" * 65, "a b", ""])
def test_bad_key_format_is_422_on_key(alice, key):
    response = create_field(alice, key=key, name="X", data_type="text")
    assert response.status_code == 422
    assert first_error(response)["attr"] == "key"


def test_unknown_data_type_is_422(alice):
    response = create_field(alice, key="x", name="X", data_type="money")
    assert response.status_code == 422
    assert first_error(response)["attr"] == "data_type"


def test_duplicate_key_is_409_with_existing_id(alice):
    first = create_field(alice, key="plan", name="Plan", data_type="text").json()
    response = create_field(alice, name="Plan", data_type="number")
    assert response.status_code == 409
    assert response.json()["existing_id"] == first["id"]
    assert first_error(response)["attr"] == "key"


@pytest.mark.parametrize("data_type", ["single_select", "multi_select"])
@pytest.mark.parametrize(
    ("options", "attr"),
    [(None, "options"), ([], "options"), (["a", "A"], "options"), (["a", ""], "options.1"), ("a", "options")],
)
def test_select_types_need_unique_options(alice, data_type, options, attr):
    body = {"key": "x", "name": "X", "data_type": data_type}
    if options is not None:
        body["options"] = options
    response = alice.client.post(FIELDS, body, format="json")
    assert response.status_code == 422
    assert first_error(response)["attr"] == attr


def test_multi_select_options_cannot_hold_csv_separators(alice):
    response = create_field(alice, key="x", name="X", data_type="multi_select", options=["a;b", "c"])
    assert response.status_code == 422 and first_error(response)["attr"] == "options"


def test_non_select_types_take_no_options(alice):
    response = create_field(alice, key="x", name="X", data_type="text", options=["a"])
    assert response.status_code == 422
    assert first_error(response)["code"] == "options_not_allowed"


def test_folder_must_belong_to_the_org(alice, charlie):
    foreign = CustomFieldFolder.objects.create(org=charlie.org, name="Theirs")
    for folder in (foreign.id, 999999, "abc"):
        response = create_field(alice, key="x", name="X", data_type="text", folder=folder)
        assert response.status_code == 422
        assert first_error(response)["attr"] == "folder"
    assert not CustomField.objects.exists()


# --- fields: updates and deletes -------------------------------------------------------


def test_key_and_data_type_cannot_change(alice):
    field = create_field(alice, key="plan", name="Plan", data_type="text").json()
    for body, attr in (({"key": "tier"}, "key"), ({"data_type": "number"}, "data_type")):
        response = alice.client.patch(f"{FIELDS}/{field['id']}", body, format="json")
        assert response.status_code == 422
        assert first_error(response)["attr"] == attr
        assert first_error(response)["code"] == "immutable"
    # sending the current values back is not a change
    same = alice.client.patch(
        f"{FIELDS}/{field['id']}", {"key": "plan", "data_type": "text", "name": "Tier"}, format="json"
    )
    assert same.status_code == 200 and same.json()["name"] == "Tier"


def test_options_can_change_and_old_values_stay_until_rewritten(alice):
    field = create_field(alice, key="plan", name="Plan", data_type="single_select", options=["Free", "Pro"]).json()
    contact = make_contact(org=alice.org, custom={"plan": "Pro"})
    response = alice.client.patch(f"{FIELDS}/{field['id']}", {"options": ["Free", "Business"]}, format="json")
    assert response.status_code == 200 and response.json()["options"] == ["Free", "Business"]
    contact.refresh_from_db()
    assert contact.custom == {"plan": "Pro"}
    rewrite = alice.client.put(f"/api/v1/contacts/{contact.id}/custom/plan", {"value": "pro"}, format="json")
    assert rewrite.status_code == 422
    emptied = alice.client.patch(f"{FIELDS}/{field['id']}", {"options": []}, format="json")
    assert emptied.status_code == 422 and first_error(emptied)["attr"] == "options"


def test_deleting_a_field_removes_its_values_from_every_contact_and_rewrites_no_contact(alice):
    """Values refer to the field by id (ON DELETE CASCADE): one DELETE of the definition, no contact rewritten."""
    field = create_field(alice, key="score", name="Score", data_type="number").json()
    create_field(alice, key="plan", name="Plan", data_type="text")
    make_contacts(
        alice.org,
        [{"custom": {"score": i, "plan": "Pro"}} for i in range(50)] + [{"custom": {"plan": "Free"}} for _ in range(3)],
    )
    with CaptureQueriesContext(connection) as queries:
        assert alice.client.delete(f"{FIELDS}/{field['id']}").status_code == 204
    writes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith(("UPDATE", "INSERT", "DELETE"))]
    assert [w.split()[2] for w in writes] == ['"customization_customfield"']
    values = Counter(str(c.custom) for c in attach_tags_and_custom(list(Contact.objects.for_org(alice.org.id))))
    assert values == {"{'plan': 'Pro'}": 50, "{'plan': 'Free'}": 3}


def test_deleting_a_field_leaves_other_orgs_values(alice, charlie):
    field = create_field(alice, key="score", name="Score", data_type="number").json()
    create_field(charlie, key="score", name="Score", data_type="number")
    theirs = make_contact(org=charlie.org, custom={"score": 5})
    alice.client.delete(f"{FIELDS}/{field['id']}")
    theirs.refresh_from_db()
    assert theirs.custom == {"score": 5}


def test_list_filters_by_folder_and_type(alice):
    folder = CustomFieldFolder.objects.create(org=alice.org, name="Billing")
    create_field(alice, key="a", name="A", data_type="text", folder=folder.id)
    create_field(alice, key="b", name="B", data_type="number")
    assert [f["key"] for f in alice.client.get(f"{FIELDS}?folder={folder.id}").json()["results"]] == ["a"]
    assert [f["key"] for f in alice.client.get(f"{FIELDS}?data_type=number").json()["results"]] == ["b"]
    assert alice.client.get(f"{FIELDS}?data_type=money").status_code == 422


@pytest.mark.parametrize("actor", ["bob", "carol"])
def test_members_read_fields_but_cannot_write_them(request, alice, actor):
    member = request.getfixturevalue(actor)
    field = create_field(alice, key="plan", name="Plan", data_type="text").json()
    make_contact(org=alice.org, custom={"plan": "Pro"})
    assert member.client.get(FIELDS).json()["count"] == 1
    assert create_field(member, key="x", name="X", data_type="text").status_code == 403
    assert member.client.patch(f"{FIELDS}/{field['id']}", {"name": "Y"}, format="json").status_code == 403
    assert member.client.delete(f"{FIELDS}/{field['id']}").status_code == 403
    assert CustomField.objects.get().name == "Plan"
    assert Contact.objects.get().custom == {"plan": "Pro"}


def test_other_org_cannot_see_or_touch_fields(alice, charlie):
    field = create_field(alice, key="plan", name="Plan", data_type="text").json()
    contact = make_contact(org=alice.org, custom={"plan": "Pro"})
    assert charlie.client.get(FIELDS).json()["count"] == 0
    assert charlie.client.get(f"{FIELDS}/{field['id']}").status_code == 404
    assert charlie.client.patch(f"{FIELDS}/{field['id']}", {"name": "Y"}, format="json").status_code == 404
    assert charlie.client.delete(f"{FIELDS}/{field['id']}").status_code == 404
    contact.refresh_from_db()
    assert contact.custom == {"plan": "Pro"} and CustomField.objects.get().name == "Plan"
    # keys are unique per org, not globally
    assert create_field(charlie, key="plan", name="Plan", data_type="text").status_code == 201


def test_create_honours_idempotency_key(alice):
    headers = {"HTTP_IDEMPOTENCY_KEY": "field-1"}
    first = alice.client.post(FIELDS, {"key": "plan", "name": "Plan", "data_type": "text"}, format="json", **headers)
    again = alice.client.post(FIELDS, {"key": "plan", "name": "Plan", "data_type": "text"}, format="json", **headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert CustomField.objects.count() == 1
