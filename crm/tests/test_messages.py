"""What a newcomer gets wrong first, answered through the HTTP API with what to do instead (issue 22)."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def problem(response, status=422):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return response.json()


@pytest.fixture
def contact(alice):
    return alice.client.post("/api/v1/contacts", {"name": "Ada Lovelace"}, format="json").json()


def test_the_token_keyword_gets_told_to_use_bearer(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {alice.token}", HTTP_X_ORG_ID=str(alice.org.id))
    body = problem(client.get("/api/v1/contacts"), 401)
    assert "Authorization: Bearer <token>" in body["detail"]
    assert body["errors"][0]["code"] == "authentication_failed"


def test_the_bearer_keyword_in_any_case_works_and_other_schemes_are_left_alone(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"bearer {alice.token}", HTTP_X_ORG_ID=str(alice.org.id))
    assert client.get("/api/v1/contacts").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Basic YTpi", HTTP_X_ORG_ID=str(alice.org.id))
    assert problem(client.get("/api/v1/contacts"), 401)["detail"] == "Authentication credentials were not provided."


def test_an_unknown_data_type_lists_the_valid_ones(alice):
    body = problem(alice.client.post("/api/v1/custom-fields", {"name": "Tier", "data_type": "dropdown"}, format="json"))
    error = body["errors"][0]
    assert (error["attr"], error["code"]) == ("data_type", "invalid_choice")
    assert error["detail"].startswith('"dropdown" is not a valid choice. Expected one of: text, textarea, number,')
    assert "single_select, multi_select" in error["detail"]


def test_a_model_choice_lists_the_valid_ones_too(alice, contact):
    body = {"contact": contact["id"], "name": "Deal", "status": "pending"}
    error = problem(alice.client.post("/api/v1/opportunities", body, format="json"))["errors"][0]
    assert error["attr"] == "status"
    assert error["detail"] == '"pending" is not a valid choice. Expected one of: open, won, lost, abandoned.'


@pytest.mark.parametrize(("word", "stored"), [("yes", True), ("No", False), ("1", True), ("0", False), ("on", True)])
def test_dnc_takes_the_words_its_error_names(alice, word, stored):
    created = alice.client.post("/api/v1/contacts", {"name": "Ada", "dnc": word}, format="json")
    assert created.status_code == 201 and created.json()["dnc"] is stored


def test_a_bad_dnc_says_which_spellings_are_accepted(alice):
    error = problem(alice.client.post("/api/v1/contacts", {"name": "Ada", "dnc": "maybe"}, format="json"))["errors"][0]
    assert error["attr"] == "dnc"
    for spelling in ("true/false", "yes/no", "1/0"):
        assert spelling in error["detail"]


@pytest.mark.parametrize(("value", "stored"), [(1500, "1500.00"), (1499.99, "1499.99"), ("250", "250.00")])
def test_an_opportunity_value_may_be_a_json_number_and_reads_as_a_string(alice, contact, value, stored):
    body = {"contact": contact["id"], "name": "Deal", "value": value}
    created = alice.client.post("/api/v1/opportunities", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["value"] == stored


@pytest.mark.parametrize(("given", "stored"), [("usd", "USD"), (" eur ", "EUR"), ("JPY", "JPY")])
def test_a_currency_code_in_any_case_is_stored_in_capitals(alice, contact, given, stored):
    body = {"contact": contact["id"], "name": "Deal", "currency": given}
    created = alice.client.post("/api/v1/opportunities", body, format="json")
    assert created.status_code == 201 and created.json()["currency"] == stored


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("ZZZ", "'ZZZ' is not an ISO 4217 currency code"),
        ("XXX", "'XXX' is not an ISO 4217 currency code"),
        ("dollars", "expected three letters of ISO 4217"),
        ("U$D", "expected three letters of ISO 4217"),
    ],
)
def test_a_currency_outside_iso_4217_is_refused_with_the_reason(alice, contact, given, says):
    body = {"contact": contact["id"], "name": "Deal", "currency": given}
    error = problem(alice.client.post("/api/v1/opportunities", body, format="json"))["errors"][0]
    assert (error["attr"], error["code"]) == ("currency", "invalid_currency")
    assert says in error["detail"]


def test_a_currency_patch_is_checked_the_same_way(alice, contact):
    created = alice.client.post("/api/v1/opportunities", {"contact": contact["id"], "name": "Deal"}, format="json")
    url = f"/api/v1/opportunities/{created.json()['id']}"
    assert problem(alice.client.patch(url, {"currency": "ZZZ"}, format="json"))["errors"][0]["attr"] == "currency"
    assert alice.client.patch(url, {"currency": "gbp"}, format="json").json()["currency"] == "GBP"


@pytest.mark.parametrize(
    ("name", "first", "last", "shown"),
    [
        ("Hopper, Grace", "Grace", "Hopper", "Grace Hopper"),
        ("Lovelace,  Ada King ", "Ada King", "Lovelace", "Ada King Lovelace"),
        ("Mary Ann Smith", "Mary Ann", "Smith", "Mary Ann Smith"),
    ],
)
def test_a_name_written_last_comma_first_is_split_that_way(alice, name, first, last, shown):
    created = alice.client.post("/api/v1/contacts", {"name": name}, format="json").json()
    assert (created["first_name"], created["last_name"], created["name"]) == (first, last, shown)


def test_a_patched_last_comma_first_name_is_split_too(alice, contact):
    patched = alice.client.patch(f"/api/v1/contacts/{contact['id']}", {"name": "Hopper, Grace"}, format="json").json()
    assert (patched["first_name"], patched["last_name"]) == ("Grace", "Hopper")


def test_an_imported_last_comma_first_name_is_split_too(alice):
    csv = 'name,email\n"Hopper, Grace",grace@example.com\n'
    report = alice.client.generic("POST", "/api/v1/contacts/import", csv, content_type="text/csv")
    assert report.status_code == 200 and report.json()["created"] == 1
    found = alice.client.get("/api/v1/contacts", {"q": "grace@example.com"}).json()["results"][0]
    assert (found["first_name"], found["last_name"]) == ("Grace", "Hopper")


@pytest.fixture
def gb_org(alice):
    alice.org.default_region = "GB"
    alice.org.save(update_fields=["default_region"])
    return alice


def test_a_us_number_without_a_country_code_in_a_gb_org_is_not_filed_as_a_london_number(gb_org):
    # 207 946 0958 is a Maine number in the US and 020 7946 0958 in London: the digits alone cannot say which.
    body = {"name": "Ada", "phone": "207 946 0958"}
    error = problem(gb_org.client.post("/api/v1/contacts", body, format="json"))["errors"][0]
    assert (error["attr"], error["code"]) == ("phone", "ambiguous_phone")
    assert "+44 20 7946 0958 (GB)" in error["detail"] and "+1 207-946-0958 (US)" in error["detail"]
    assert "Write it with + and the country code" in error["detail"]


@pytest.mark.parametrize(("typed", "stored"), [("+1 207 946 0958", "+12079460958"), ("020 7946 0958", "+442079460958")])
def test_either_reading_written_out_is_stored(gb_org, typed, stored):
    created = gb_org.client.post("/api/v1/contacts", {"name": "Ada", "phone": typed}, format="json")
    assert created.status_code == 201 and created.json()["phone"] == stored


def test_a_us_number_that_is_no_gb_number_says_how_to_write_it(gb_org):
    error = problem(gb_org.client.post("/api/v1/contacts", {"phone": "(415) 555-2671"}, format="json"))["errors"][0]
    assert error["detail"].endswith("it is a valid US number: write it +1 415-555-2671.")


def test_the_same_digits_in_a_us_org_are_a_us_number(alice):
    created = alice.client.post("/api/v1/contacts", {"name": "Ada", "phone": "207 946 0958"}, format="json")
    assert created.status_code == 201 and created.json()["phone"] == "+12079460958"


def test_an_import_reports_the_ambiguous_row_and_keeps_the_others(gb_org):
    csv = "name,phone\nAda,207 946 0958\nGrace,020 7946 0000\n"
    report = gb_org.client.generic("POST", "/api/v1/contacts/import", csv, content_type="text/csv").json()
    assert (report["created"], report["failed"]) == (1, 1)
    assert report["errors"][0]["field"] == "phone" and "no country code" in report["errors"][0]["message"]
