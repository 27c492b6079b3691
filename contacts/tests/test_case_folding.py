"""One case folding for every language (DESIGN §2), the same in Python and in SQL: values are folded in
Python (customization.text.fold) and SQL compares the folded forms. `q` also ignores accents."""

import pytest

from customization.models import CustomField
from customization.text import fold, fold_unaccented

pytestmark = pytest.mark.django_db
SEARCH = "/api/v1/contacts/search"

# A final capital sigma lowercases to 'ς' in Python and to 'σ' in PostgreSQL's lower().
SIGMA_EMAIL = "ΟΔΥΣΣΕΥΣ@example.gr"


def search(actor, field, op, value, **extra):
    body = {"query": {"groups": [{"conditions": [{"field": field, "op": op, "value": value}]}]}, **extra}
    response = actor.client.post(SEARCH, body, format="json")
    assert response.status_code == 200, response.json()
    return [c["id"] for c in response.json()["results"]]


def q(actor, text):
    return [c["id"] for c in actor.client.get("/api/v1/contacts", {"q": text}).json()["results"]]


def test_fold_is_unicode_case_folding():
    assert fold("ΟΔΥΣΣΕΥΣ") == fold("οδυσσευς") == fold("Οδυσσευς") == "οδυσσευσ"
    assert fold("STRASSE") == fold("Straße") == "strasse"
    assert fold("Ｍüller") == fold("MÜLLER") == "müller"  # full-width letters are compatibility forms
    assert fold_unaccented("José Müller") == "jose muller"


def test_an_email_is_found_by_its_exact_stored_form_and_any_case(alice):
    created = alice.client.post("/api/v1/contacts", {"email": SIGMA_EMAIL}, format="json")
    assert created.status_code == 201, created.json()
    stored = created.json()["email"]
    contact_id = created.json()["id"]
    for value in (stored, stored.lower(), stored.upper()):
        assert search(alice, "email", "eq", value) == [contact_id], value


def test_a_duplicate_email_in_another_case_is_a_409_naming_the_contact(alice):
    first = alice.client.post("/api/v1/contacts", {"email": SIGMA_EMAIL}, format="json").json()
    again = alice.client.post("/api/v1/contacts", {"email": SIGMA_EMAIL.lower()}, format="json")
    assert again.status_code == 409 and again.json()["existing_id"] == first["id"]


def test_importing_an_existing_email_in_another_case_updates_that_contact(alice):
    first = alice.client.post("/api/v1/contacts", {"email": SIGMA_EMAIL}, format="json").json()
    rows = [{"email": SIGMA_EMAIL.lower(), "company": "Ithaca"}]
    report = alice.client.post("/api/v1/contacts/import", {"contacts": rows}, format="json").json()
    assert (report["created"], report["updated"]) == (0, 1)
    assert alice.client.get(f"/api/v1/contacts/{first['id']}").json()["company"] == "Ithaca"


def test_text_filters_compare_case_folded_text_in_every_language(alice):
    street = alice.client.post("/api/v1/contacts", {"name": "Ada", "company": "Straße GmbH"}, format="json").json()
    assert search(alice, "company", "eq", "STRASSE GMBH") == [street["id"]]
    assert search(alice, "company", "starts_with", "strasse") == [street["id"]]
    assert search(alice, "company", "contains", "SSE G") == [street["id"]]
    assert search(alice, "company", "neq", "strasse gmbh") == []


def test_custom_text_and_options_compare_case_folded(alice):
    CustomField.objects.create(org=alice.org, key="city", name="City", data_type="text")
    CustomField.objects.create(org=alice.org, key="tier", name="Tier", data_type="single_select", options=["Größe"])
    contact = alice.client.post(
        "/api/v1/contacts", {"name": "Ada", "custom": {"city": "ΣΠΑΡΤΗ", "tier": "GRÖSSE"}}, format="json"
    ).json()
    assert contact["custom"] == {"city": "ΣΠΑΡΤΗ", "tier": "Größe"}  # the option as defined
    assert search(alice, "custom.city", "eq", "σπαρτη") == [contact["id"]]
    assert search(alice, "custom.tier", "eq", "grösse") == [contact["id"]]


def test_tags_are_stored_case_folded_and_match_in_any_case(alice):
    contact = alice.client.post("/api/v1/contacts", {"name": "Ada", "tags": ["STRASSE", "Straße"]}, format="json")
    assert contact.json()["tags"] == ["strasse"]
    assert search(alice, "tags", "contains", "Straße") == [contact.json()["id"]]


@pytest.mark.parametrize(("stored", "typed"), [("Müller", "muller"), ("Muller", "müller"), ("José", "jose"),
                                               ("Jose", "josé"), ("ÅSA ØRN", "asa ørn")])  # fmt: skip
def test_q_ignores_case_and_accents(alice, stored, typed):
    contact = alice.client.post("/api/v1/contacts", {"name": stored}, format="json").json()
    alice.client.post("/api/v1/contacts", {"name": "Someone Else"}, format="json")
    assert q(alice, typed) == [contact["id"]]
