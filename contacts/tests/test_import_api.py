"""POST /contacts/import through the HTTP API: formats, options, errors, merging, limits, scope."""

import io
import itertools
import json

import pytest
from django.test import override_settings

from contacts.models import Contact
from contacts.testing import make_contact
from customization.models import CustomField, Tag
from history.models import ContactChange

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts/import"


def post_json(actor, contacts, **options):
    body = {"contacts": contacts}
    if options:
        body["options"] = options
    return actor.client.post(URL, body, format="json")


def post_csv(actor, text, query="", encoding="utf-8"):
    data = text.encode(encoding) if isinstance(text, str) else text
    return actor.client.generic("POST", f"{URL}{query}", data, content_type="text/csv")


def post_file(actor, text, query="", name="contacts.csv"):
    upload = io.BytesIO(text.encode("utf-8"))
    upload.name = name
    return actor.client.post(f"{URL}{query}", {"file": upload}, format="multipart")


def contacts_of(org):
    return Contact.objects.for_org(org.id)


@pytest.fixture
def plan_field(org_a):
    return CustomField.objects.create(
        org=org_a, key="plan", name="Plan", data_type="single_select", options=["Gold", "Silver"]
    )


@pytest.fixture
def seats_field(org_a):
    return CustomField.objects.create(org=org_a, key="seats", name="Seats", data_type="number")


# --- formats -----------------------------------------------------------------------------------------------


def test_json_import_creates_normalized_contacts(alice, plan_field):
    response = post_json(
        alice,
        [
            {
                "name": "Ada Lovelace",
                "email": "Ada@Example.COM",
                "phone": "(415) 555-2671",
                "tags": [" VIP "],
                "custom": {"plan": "gold"},
            },
            {"first_name": "Grace", "last_name": "Hopper", "company": "Navy"},
        ],
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["total"], body["created"], body["updated"], body["skipped"], body["failed"]) == (2, 2, 0, 0, 0)
    assert body["errors"] == [] and body["dry_run"] is False
    ada = contacts_of(alice.org).get(email__iexact="ada@example.com")
    assert (ada.first_name, ada.last_name, ada.name) == ("Ada", "Lovelace", "Ada Lovelace")
    assert ada.phone == "+14155552671" and ada.tags == ["vip"] and ada.custom == {"plan": "Gold"}
    assert ada.search_text == "ada lovelace ada@example.com 14155552671"
    grace = contacts_of(alice.org).get(first_name="Grace")
    assert grace.name == "Grace Hopper" and grace.search_text == "grace hopper navy"
    assert Tag.objects.for_org(alice.org.id).filter(name="vip").exists()
    # Imported contacts are visible through the API like any other.
    assert alice.client.get(f"/api/v1/contacts/{ada.id}").json()["custom"] == {"plan": "Gold"}


def test_csv_body_with_bom_crlf_and_quoted_newlines(alice, seats_field):
    text = (
        "\ufeffName,Email,Notes,Tags,custom.seats,favourite_colour\r\n"
        'Ada Lovelace,ada@example.com,"line one\r\nline two",vip;webinar,"1,200",blue\r\n'
        '"Hopper, Grace",grace@example.com,"she said ""hi""","a, b",,\r\n'
    )
    response = post_csv(alice, text)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["created"] == 2 and body["failed"] == 0
    assert body["ignored_columns"] == ["favourite_colour"]
    ada = contacts_of(alice.org).get(email="ada@example.com")
    assert ada.notes == "line one\r\nline two" and ada.tags == ["vip", "webinar"] and ada.custom == {"seats": 1200}
    grace = contacts_of(alice.org).get(email="grace@example.com")
    assert (grace.first_name, grace.last_name, grace.name) == ("Grace", "Hopper", "Grace Hopper")
    assert grace.notes == 'she said "hi"' and grace.tags == ["a", "b"]


def test_csv_multipart_upload_with_query_options(alice):
    text = "email,first_name\nada@example.com,Ada\n"
    response = post_file(alice, text, "?tags=imported,2026&dry_run=false")
    assert response.status_code == 200, response.json()
    assert response.json()["created"] == 1
    assert contacts_of(alice.org).get().tags == ["2026", "imported"]


def test_csv_sent_as_octet_stream_imports_like_text_csv(alice):
    # What a generated client sends for the binary body (openapi-python-client has no text/csv body).
    text = "email,first_name,tags\nada@example.com,Ada,vip\n"
    data = text.encode()
    response = alice.client.generic("POST", f"{URL}?dry_run=false", data, content_type="application/octet-stream")
    assert response.status_code == 200, response.json()
    assert response.json()["created"] == 1
    assert contacts_of(alice.org).get().tags == ["vip"]


def test_multipart_without_file_is_422(alice):
    response = alice.client.post(URL, {"other": "x"}, format="multipart")
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "file"


def test_non_utf8_csv_is_422_and_writes_nothing(alice):
    response = post_csv(alice, "name,email\nJosé,jose@example.com\n", encoding="latin-1")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "invalid_encoding"
    assert not contacts_of(alice.org).exists()


def test_empty_csv_is_422(alice):
    assert post_csv(alice, "").status_code == 422


def test_json_body_without_contacts_list_is_422(alice):
    response = alice.client.post(URL, {"contacts": "nope"}, format="json")
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "contacts"
    assert alice.client.post(URL, {"rows": []}, format="json").status_code == 422


def test_json_unknown_keys_are_reported_once(alice):
    response = post_json(
        alice, [{"email": "a@example.com", "colour": "red"}, {"email": "b@example.com", "colour": "blue", "id": 5}]
    )
    assert response.json()["ignored_columns"] == ["colour", "id"]
    assert response.json()["created"] == 2


# --- options -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "attr"),
    [
        ({"dedupe_on": "fax"}, "options.dedupe_on"),
        ({"on_duplicate": "overwrite"}, "options.on_duplicate"),
        ({"dry_run": "maybe"}, "options.dry_run"),
        ({"tags": ["ok", ""]}, "options.tags.1"),
        ({"tags": 5}, "options.tags"),
    ],
)
def test_invalid_json_options_are_422_with_attr(alice, options, attr):
    response = post_json(alice, [{"email": "a@example.com"}], **options)
    assert response.status_code == 422
    assert [e["attr"] for e in response.json()["errors"]] == [attr]
    assert not contacts_of(alice.org).exists()


@pytest.mark.parametrize(
    ("query", "attr"),
    [
        ("?dedupe_on=fax", "dedupe_on"),
        ("?on_duplicate=x", "on_duplicate"),
        ("?dry_run=perhaps", "dry_run"),
    ],
)
def test_invalid_query_options_are_422_with_param_name(alice, query, attr):
    response = post_csv(alice, "email\na@example.com\n", query)
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == attr


@pytest.mark.parametrize("options", [{"dryrun": True}, {"dry_run": True, "dedupe": "email"}])
def test_an_unknown_json_option_is_a_422_naming_it_and_nothing_is_imported(alice, options):
    """A mistyped `dry_run` must never run for real."""
    response = post_json(alice, [{"email": "a@example.com"}], **options)
    assert response.status_code == 422
    unknown = [e["attr"] for e in response.json()["errors"] if e["code"] == "unknown_option"]
    assert unknown == [f"options.{name}" for name in options if name != "dry_run"]
    assert not contacts_of(alice.org).exists()


def test_an_unknown_query_option_is_a_422_naming_it_and_nothing_is_imported(alice):
    response = post_csv(alice, "email\na@example.com\n", "?dryrun=true")
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "dryrun"
    assert not contacts_of(alice.org).exists()


def test_options_must_be_an_object(alice):
    response = alice.client.post(URL, {"contacts": [], "options": [1]}, format="json")
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "options"


EXISTING = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone": "+14155552671",
    "company": "Engines",
    "tags": ["old"],
    "custom": {"seats": 3},
}


def seed(org, **overrides):
    values = {**EXISTING, **overrides}
    return make_contact(org=org, name=f"{values['first_name']} {values['last_name']}", **values)


ROWS = [
    # matches by email only (phone differs)
    {
        "email": "ADA@example.com",
        "phone": "+1 212 555 0100",
        "company": "New Co",
        "tags": ["new"],
        "custom": {"seats": 5},
    },
    # matches by phone only
    {"email": "other@example.com", "phone": "415-555-2671", "first_name": "Augusta"},
    # matches nothing
    {"email": "fresh@example.com"},
]


def expected_outcome(dedupe_on, on_duplicate):
    """(created, updated, skipped, failed, conflicts) for ROWS against the EXISTING contact."""
    email_match = dedupe_on in ("email", "email_or_phone")
    created = updated = skipped = failed = conflicts = 0
    # Row 1: same email as the existing contact.
    if email_match:
        updated, skipped = (updated + 1, skipped) if on_duplicate == "update" else (updated, skipped + 1)
    else:
        failed += 1  # its email belongs to another contact: never a second contact with one email
    # Row 2: the existing contact's phone with another email: another person, never a match
    # (DESIGN §4). With dedupe_on=phone that is a conflict that changes nothing; otherwise the
    # row is a new contact.
    if dedupe_on == "phone":
        conflicts += 1
    else:
        created += 1
    created += 1  # row 3
    return created, updated, skipped, failed, conflicts


@pytest.mark.parametrize(
    ("dedupe_on", "on_duplicate", "dry_run"),
    list(itertools.product(["email", "phone", "email_or_phone", "none"], ["update", "skip"], [False, True])),
)
def test_every_option_combination(alice, seats_field, dedupe_on, on_duplicate, dry_run):
    existing = seed(alice.org)
    before = list(contacts_of(alice.org).values())
    response = post_json(alice, ROWS, dedupe_on=dedupe_on, on_duplicate=on_duplicate, dry_run=dry_run)
    assert response.status_code == 200, response.json()
    body = response.json()
    outcome = (body["created"], body["updated"], body["skipped"], body["failed"], body["conflicts"])
    assert outcome == expected_outcome(dedupe_on, on_duplicate)
    assert body["total"] == 3 and body["dry_run"] is dry_run

    if dry_run:
        assert list(contacts_of(alice.org).values()) == before
        return
    existing.refresh_from_db()
    emails = sorted(c.email.lower() for c in contacts_of(alice.org))
    assert len(emails) == len(set(emails))
    if on_duplicate == "skip" or dedupe_on == "none":
        assert (existing.company, existing.tags) == ("Engines", ["old"])
    if on_duplicate == "update" and dedupe_on == "email":
        assert existing.company == "New Co" and existing.phone == "+12125550100"
        assert existing.tags == ["new", "old"] and existing.custom == {"seats": 5}
        assert existing.first_name == "Ada" and "new co" in existing.search_text
    if dedupe_on == "phone":  # the conflict changed nothing
        assert (existing.email, existing.first_name, existing.phone) == ("ada@example.com", "Ada", "+14155552671")
        assert not contacts_of(alice.org).filter(email="other@example.com").exists()
    if on_duplicate == "update" and dedupe_on == "email_or_phone":
        # Row 1 updates by email (and moves the phone), row 2 then matches the old phone no more.
        assert existing.email == "ada@example.com" and existing.company == "New Co"
        assert contacts_of(alice.org).get(email="other@example.com").phone == "+14155552671"


def test_update_fills_only_given_fields_and_keeps_the_rest(alice, seats_field):
    existing = seed(alice.org, notes="keep me", dnc=True)
    response = post_csv(alice, "email,company,notes,dnc,tags\nada@example.com,Acme,,,old;x\n")
    assert response.json()["updated"] == 1
    existing.refresh_from_db()
    assert existing.company == "Acme" and existing.notes == "keep me" and existing.dnc is True
    assert existing.tags == ["old", "x"] and existing.custom == {"seats": 3}
    assert existing.search_text == "ada lovelace ada@example.com acme 14155552671"
    assert existing.updated_at > existing.created_at


def test_dry_run_reports_exactly_and_writes_nothing(alice):
    rows = [{"email": "a@example.com", "tags": ["brand-new"]}, {"email": "bad"}, {"email": "a@example.com"}]
    dry = post_json(alice, rows, dry_run=True).json()
    assert not contacts_of(alice.org).exists() and not Tag.objects.for_org(alice.org.id).exists()
    real = post_json(alice, rows).json()
    assert {**dry, "dry_run": False} == real


# --- per-row errors and in-file merging -----------------------------------------------------------------------


def test_bad_rows_are_reported_with_row_numbers_and_good_rows_land(alice, plan_field):
    text = (
        "email,phone,custom.plan,assigned_to\n"
        "ok1@example.com,,,\n"
        "not-an-email,,,\n"
        "ok2@example.com,12,platinum,\n"
        ",,,\n"
        "ok3@example.com,,silver,999999\n"
        "ok4@example.com,,Silver,\n"
    )
    body = post_csv(alice, text).json()
    # Row 4 has only empty cells: skipped silently, but it still counts for the numbering.
    assert (body["total"], body["created"], body["failed"]) == (5, 2, 3)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [
        (2, "email"),
        (3, "phone"),
        (3, "custom.plan"),
        (5, "assigned_to"),
    ]
    assert sorted(contacts_of(alice.org).values_list("email", flat=True)) == ["ok1@example.com", "ok4@example.com"]


def test_non_object_json_rows_are_row_errors(alice):
    body = post_json(alice, [{"email": "a@example.com"}, "nope", {"email": 5}, {}]).json()
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(2, None), (3, "email"), (4, None)]
    assert body["created"] == 1


def test_rows_duplicating_each_other_are_merged(alice):
    text = (
        "email,phone,first_name,last_name,company,tags\n"
        "ada@example.com,,Ada,,,a\n"
        "ADA@example.com,415 555 2671,,Lovelace,,b\n"
        ",+14155552671,,,Engines,c;a\n"
        "zed@example.com,,Zed,,,\n"
    )
    body = post_csv(alice, text).json()
    assert (body["created"], body["updated"], body["failed"]) == (2, 2, 0)
    ada = contacts_of(alice.org).get(email="ada@example.com")
    assert (ada.name, ada.phone, ada.company, ada.tags) == ("Ada Lovelace", "+14155552671", "Engines", ["a", "b", "c"])
    assert ada.search_text == "ada lovelace ada@example.com engines 14155552671"


def test_in_file_duplicates_with_skip_keep_the_first_row(alice):
    body = post_json(
        alice,
        [{"email": "a@example.com", "company": "First"}, {"email": "a@example.com", "company": "Second"}],
        on_duplicate="skip",
    ).json()
    assert (body["created"], body["skipped"]) == (1, 1)
    assert contacts_of(alice.org).get().company == "First"


def test_errors_are_capped_at_1000(alice):
    body = post_json(alice, [{"email": f"bad{i}"} for i in range(1005)] + [{"email": "ok@example.com"}]).json()
    assert body["failed"] == 1005 and len(body["errors"]) == 1000 and body["errors_truncated"] == 5
    assert body["created"] == 1


def test_option_tags_are_added_to_every_row_and_the_catalog(alice):
    post_json(alice, [{"email": "a@example.com", "tags": ["x"]}, {"email": "b@example.com"}], tags=["Campaign"])
    assert sorted(tuple(c.tags) for c in contacts_of(alice.org)) == [("campaign",), ("campaign", "x")]
    assert set(Tag.objects.for_org(alice.org.id).values_list("name", flat=True)) == {"x", "campaign"}


# --- limits ---------------------------------------------------------------------------------------------


@override_settings(IMPORT_MAX_ROWS=3)
def test_too_many_json_rows_is_413_and_writes_nothing(alice):
    response = post_json(alice, [{"email": f"a{i}@example.com"} for i in range(4)])
    assert response.status_code == 413
    assert "3 rows" in response.json()["detail"]
    assert not contacts_of(alice.org).exists()


@override_settings(IMPORT_MAX_ROWS=3)
def test_too_many_csv_rows_is_413_and_writes_nothing(alice):
    text = "email\n" + "".join(f"a{i}@example.com\n" for i in range(4))
    assert post_csv(alice, text).status_code == 413
    assert post_file(alice, text).status_code == 413
    assert not contacts_of(alice.org).exists()
    assert post_csv(alice, "email\n" + "".join(f"a{i}@example.com\n" for i in range(3))).status_code == 200


@override_settings(IMPORT_MAX_BODY_BYTES=100)
def test_body_over_the_byte_cap_is_413(alice):
    response = post_csv(alice, "email\n" + "x" * 200 + "@example.com\n")
    assert response.status_code == 413
    assert not contacts_of(alice.org).exists()


# --- scope and isolation ---------------------------------------------------------------------------------


def test_assigned_only_member_cannot_touch_invisible_contacts(alice, bob, carol, seats_field):
    hidden = seed(alice.org, assigned_to=bob.user)
    mine = seed(alice.org, email="mine@example.com", phone=None, assigned_to=carol.user)
    body = post_json(
        carol,
        [
            {"email": "ada@example.com", "company": "Hijack"},
            {"phone": "+1 415 555 2671", "company": "Hijack"},
            {"email": "mine@example.com", "company": "Mine Co"},
            {"email": "new@example.com"},
        ],
    ).json()
    # The hidden contact's email is unique: that row fails. Its phone is not: that row is carol's new contact.
    assert (body["created"], body["updated"], body["failed"]) == (2, 1, 1)
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(1, "email")]
    hidden.refresh_from_db()
    mine.refresh_from_db()
    assert hidden.company == "Engines" and hidden.assigned_to_id == bob.user.id
    assert mine.company == "Mine Co"
    assert contacts_of(alice.org).get(email="new@example.com").assigned_to_id == carol.user.id
    twin = contacts_of(alice.org).exclude(pk=hidden.pk).get(company="Hijack")
    assert (twin.phone, twin.assigned_to_id) == (hidden.phone, carol.user.id)


@pytest.mark.parametrize("dedupe_on", ["email_or_phone", "phone"])
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_hidden_contacts_phone_answers_exactly_as_an_unused_one(alice, bob, carol, seats_field, dedupe_on, dry_run):
    """No phone-number oracle: an assigned-only member cannot tell a number someone else's contact
    holds from a number nobody has."""
    hidden = seed(alice.org, assigned_to=bob.user)
    answers = []
    for phone in (hidden.phone, "+1 415 555 0199"):
        body = post_json(carol, [{"name": "Probe", "phone": phone}], dry_run=dry_run, dedupe_on=dedupe_on).json()
        answers.append({key: value for key, value in body.items() if key != "dry_run"})
    assert answers[0] == answers[1]
    assert answers[0]["created"] == 1 and answers[0]["errors"] == []
    hidden.refresh_from_db()
    assert (hidden.name, hidden.assigned_to_id) == ("Ada Lovelace", bob.user.id)


def test_assigned_only_member_cannot_assign_to_others(bob, carol):
    body = post_json(carol, [{"email": "x@example.com", "assigned_to": bob.user.id}]).json()
    assert body["failed"] == 1 and body["errors"][0]["field"] == "assigned_to"


def test_import_never_touches_another_org(alice, charlie, seats_field):
    ada = seed(alice.org)
    body = post_json(charlie, [{"email": "ada@example.com", "company": "Org B Co"}]).json()
    assert body["created"] == 1 and body["updated"] == 0
    ada.refresh_from_db()
    assert ada.company == "Engines"
    theirs = contacts_of(charlie.org).get()
    assert theirs.email == "ada@example.com" and theirs.company == "Org B Co"
    assert contacts_of(alice.org).count() == 1


def test_another_orgs_custom_fields_and_members_are_unknown(alice, charlie, plan_field):
    body = post_json(
        charlie,
        [
            {"email": "a@example.com", "custom": {"plan": "Gold"}},
            {"email": "b@example.com", "assigned_to": alice.user.id},
        ],
    ).json()
    assert [(e["row"], e["field"]) for e in body["errors"]] == [(1, "custom.plan"), (2, "assigned_to")]
    csv_body = post_csv(charlie, "email,custom.plan\nc@example.com,Gold\n").json()
    assert csv_body["ignored_columns"] == ["custom.plan"] and csv_body["created"] == 1


def test_anonymous_and_non_members_are_refused(anon, alice, charlie):
    assert anon.post(URL, {"contacts": []}, format="json").status_code == 401
    charlie.client.credentials(HTTP_AUTHORIZATION=f"Bearer {charlie.token}", HTTP_X_ORG_ID=str(alice.org.id))
    assert charlie.client.post(URL, {"contacts": [{"email": "x@example.com"}]}, format="json").status_code == 403
    assert not contacts_of(alice.org).exists()


def test_schema_documents_the_body_types(anon):
    schema = json.loads(anon.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    operation = schema["paths"][URL]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", "text/csv", "application/octet-stream", "multipart/form-data"}
    # A raw CSV body is bytes whichever its type, so generators give it a binary body (issue 22).
    assert {content[raw]["schema"]["format"] for raw in ("text/csv", "application/octet-stream")} == {"binary"}
    assert {"200", "413", "422"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} >= {"dry_run", "dedupe_on", "on_duplicate", "tags"}


def test_idempotency_key_replays_the_first_report(alice):
    body = {"contacts": [{"email": "a@example.com"}]}
    first = alice.client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = alice.client.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.json()["created"] == 1 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert contacts_of(alice.org).count() == 1


def test_csv_whose_header_names_no_contact_field_is_422(alice):
    response = alice.client.generic("POST", "/api/v1/contacts/import", b"{}\n1\n", content_type="text/csv")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "no_known_columns"


def test_json_options_tags_must_be_a_list(alice):
    body = {"contacts": [{"name": "A"}], "options": {"tags": "vip"}}
    response = alice.client.post("/api/v1/contacts/import", body, format="json")
    assert response.status_code == 422
    assert response.json()["errors"][0]["attr"] == "options.tags"


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_csv_delimiter_is_found_from_the_header(alice, delimiter):
    text = delimiter.join(["name", "email", "company", "tags"]) + "\n"
    text += delimiter.join(['"Müller, Jürgen"', "jm@example.com", '"ACME; Inc"', "vip"]) + "\n"
    response = post_csv(alice, text)
    assert response.status_code == 200, response.json()
    contact = contacts_of(alice.org).get()
    assert (contact.first_name, contact.last_name) == ("Jürgen", "Müller")  # the quoted "Last, First" read whole
    assert (contact.name, contact.email, contact.company) == ("Jürgen Müller", "jm@example.com", "ACME; Inc")


def test_an_unreadable_header_says_what_was_expected(alice):
    response = post_csv(alice, "Vorname|E-Mail\nAda|ada@example.com\n")
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["code"] == "no_known_columns"
    assert "first_name" in error["detail"] and "semicolon" in error["detail"] and "'Vorname|E-Mail'" in error["detail"]
    assert not contacts_of(alice.org).exists()


# --- identity: never overwritten by a match on a weaker key (DESIGN §4) ------------------------------------

SHARED_PHONE_ROWS = [
    {"name": "Ann One", "email": "ann@example.com", "phone": "+1 415 555 0101"},
    {"name": "Ben Two", "email": "ben@example.com", "phone": "+1 415 555 0101"},
    {"name": "Cy Three", "email": "cy@example.com", "phone": "+1 415 555 0101"},
]


def test_three_rows_with_one_phone_and_three_emails_are_three_people(alice):
    body = post_json(alice, SHARED_PHONE_ROWS).json()
    assert (body["created"], body["updated"], body["conflicts"]) == (3, 0, 0)
    people = dict(contacts_of(alice.org).values_list("email", "name"))
    assert people == {"ann@example.com": "Ann One", "ben@example.com": "Ben Two", "cy@example.com": "Cy Three"}


def test_reimporting_the_same_file_creates_nothing_and_changes_nothing(alice):
    post_json(alice, SHARED_PHONE_ROWS)
    before = sorted(contacts_of(alice.org).values_list("id", "email", "name", "phone", "updated_at"))
    again = post_json(alice, SHARED_PHONE_ROWS).json()
    assert (again["created"], again["updated"], again["skipped"], again["failed"]) == (0, 0, 3, 0)
    assert sorted(contacts_of(alice.org).values_list("id", "email", "name", "phone", "updated_at")) == before


REIMPORTED = (
    "name,email,phone,tags,custom.seats,custom.colours,custom.since\r\n"
    '"Hopper, Grace",grace@example.com,415-555-0101,Navy;cobol,3,"blue;red",2024-05-01\r\n'
    "Ann One,ann@example.com,+1 415 555 0102,,,,\r\n"
    "Ben Two,ben@example.com,,vip,1200,Red,\r\n"
    "Ben Two,BEN@Example.com,,,1200,,\r\n"
)


def test_a_file_imported_again_in_other_spellings_changes_nothing_until_a_value_differs(alice, seats_field):
    """Values compare as stored: a name given "Last, First", an email or a tag in another case, a
    select option in lower case, the rows' own duplicates. A row that changes nothing is `skipped`
    and its contact is not written (`updated_at` and the history stay as they were)."""
    CustomField.objects.create(
        org=alice.org, key="colours", name="Colours", data_type="multi_select", options=["Red", "Blue"]
    )
    CustomField.objects.create(org=alice.org, key="since", name="Since", data_type="date")
    first = post_csv(alice, REIMPORTED, "?report=rows").json()
    assert (first["created"], first["updated"], first["skipped"], first["failed"]) == (3, 0, 1, 0)
    grace = contacts_of(alice.org).get(email="grace@example.com")
    assert (grace.name, grace.tags, grace.custom) == (
        "Grace Hopper",
        ["cobol", "navy"],
        {"seats": 3, "colours": ["Blue", "Red"], "since": "2024-05-01"},
    )

    def state():
        contacts = contacts_of(alice.org).order_by("id")
        changes = ContactChange.objects.filter(org_id=alice.org.id).count()
        return [(c.id, c.name, c.email, c.phone, c.tags, c.custom, c.updated_at) for c in contacts], changes

    before = state()
    again = post_csv(alice, REIMPORTED, "?report=rows").json()
    assert (again["created"], again["updated"], again["skipped"], again["failed"]) == (0, 0, 4, 0)
    assert {row["outcome"] for row in again["rows"]} == {"skipped"}
    assert state() == before
    assert post_csv(alice, REIMPORTED, "?dry_run=true").json()["skipped"] == 4  # a dry run says the same

    changed = post_csv(alice, REIMPORTED.replace('"blue;red"', "blue"), "?report=rows").json()
    assert [row["outcome"] for row in changed["rows"]] == ["updated", "skipped", "skipped", "skipped"]
    after, _ = state()
    assert [contact[5] for contact in after] == [
        {"seats": 3, "colours": ["Blue"], "since": "2024-05-01"},
        *[contact[5] for contact in before[0][1:]],
    ]
    assert [contact[6] == old[6] for contact, old in zip(after, before[0], strict=True)] == [False, True, True]
    added_tag = post_json(alice, [{"email": "ann@example.com", "tags": ["new"]}]).json()
    assert (added_tag["updated"], added_tag["skipped"]) == (1, 0)


def test_a_phone_finds_a_contact_without_an_email_or_a_row_without_one(alice):
    no_email = make_contact(org=alice.org, name="Dee", phone="+14155550111")
    body = post_json(alice, [{"email": "dee@example.com", "phone": "415-555-0111", "company": "Dee Co"}]).json()
    assert (body["created"], body["updated"]) == (0, 1)
    no_email.refresh_from_db()
    assert (no_email.email, no_email.company) == ("dee@example.com", "Dee Co")
    body = post_json(alice, [{"phone": "(415) 555-0111", "source": "fair"}]).json()
    assert (body["created"], body["updated"]) == (0, 1)
    no_email.refresh_from_db()
    assert no_email.source == "fair" and no_email.email == "dee@example.com"


def test_with_dedupe_on_phone_another_email_is_a_conflict_that_changes_nothing(alice):
    existing = make_contact(org=alice.org, name="Ada", email="ada@example.com", phone="+14155552671", company="Engines")
    row = {"email": "eve@example.com", "phone": "+14155552671", "company": "Eve"}
    body = post_json(alice, [row], dedupe_on="phone").json()
    assert (body["created"], body["updated"], body["conflicts"], body["failed"]) == (0, 0, 1, 0)
    assert body["errors"] == [
        {"row": 1, "field": "phone", "message": body["errors"][0]["message"], "value": "+14155552671"}
    ]
    existing.refresh_from_db()
    assert (existing.email, existing.company) == ("ada@example.com", "Engines")
    assert contacts_of(alice.org).count() == 1


def test_report_rows_gives_each_rows_outcome_contact_and_key(alice):
    existing = make_contact(org=alice.org, name="Ada", email="ada@example.com", phone="+14155552671")
    rows = [
        {"email": "new@example.com"},
        {"email": "ADA@example.com", "company": "Engines"},
        {"phone": "415-555-2671", "source": "fair"},
        {"email": "not-an-email"},
    ]
    body = post_json(alice, rows, report="rows").json()
    created = contacts_of(alice.org).get(email="new@example.com")
    assert body["rows"] == [
        {"row": 1, "outcome": "created", "contact_id": created.id, "matched_on": None},
        {"row": 2, "outcome": "updated", "contact_id": existing.id, "matched_on": "email"},
        {"row": 3, "outcome": "updated", "contact_id": existing.id, "matched_on": "phone"},
        {"row": 4, "outcome": "failed", "contact_id": None, "matched_on": None},
    ]
    assert "rows" not in post_json(alice, rows[:1]).json()  # only when asked
    csv_body = post_csv(alice, "email\nnew@example.com\n", "?report=rows").json()
    assert csv_body["rows"] == [{"row": 1, "outcome": "skipped", "contact_id": created.id, "matched_on": "email"}]


def test_each_error_carries_the_value_that_failed(alice):
    CustomField.objects.create(org=alice.org, key="seats", name="Seats", data_type="number")
    rows = [{"email": "bad@", "custom": {"seats": "many"}}, {"email": "ok@example.com", "tags": ["ok", " "]}]
    errors = post_json(alice, rows).json()["errors"]
    assert {(e["row"], e["field"], e["value"]) for e in errors} == {
        (1, "email", "bad@"),
        (1, "custom.seats", "many"),
        (2, "tags.1", " "),
    }


def test_a_process_runs_its_cap_of_synchronous_imports_and_refuses_more(alice):
    """A gunicorn worker has few threads: imports beyond SYNC_IMPORTS_PER_PROCESS are a 503 with
    Retry-After (nothing written), so the worker keeps threads for other requests."""
    from contacts.api.import_views import SYNC_IMPORTS

    with override_settings(SYNC_IMPORTS_PER_PROCESS=1), SYNC_IMPORTS.take():  # another import is running
        busy = post_csv(alice, "name,email\r\nAda,ada@example.com\r\n")
        assert busy.status_code == 503
        assert busy.json()["errors"][0]["code"] == "server_busy"
        assert busy["Retry-After"] == "5"
        assert "async=true" in busy.json()["detail"]
        assert not contacts_of(alice.org).exists()
        assert alice.client.get("/api/v1/contacts").status_code == 200  # other requests are served
        assert post_csv(alice, "name,email\r\nAda,ada@example.com\r\n", "?async=true").status_code == 202
    assert post_csv(alice, "name,email\r\nAda,ada@example.com\r\n").status_code == 200  # the slot is free again


def test_csv_rows_are_read_as_they_are_imported(alice):
    """No list of the file's rows is built first: read_csv hands the engine a generator."""
    from contacts.importing import read_csv

    rows, ignored = read_csv(b"name,email,colour\r\nAda,ada@example.com,red\r\n", {})
    assert not isinstance(rows, list) and ignored == ["colour"]
    assert list(rows) == [(1, {"name": "Ada", "email": "ada@example.com"})]
