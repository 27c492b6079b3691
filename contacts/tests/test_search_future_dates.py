"""Future-relative date operators (`within_next`, `more_than_ahead`, `today`) in the org's time zone.

At compiler level "now" is fixed and the org is in Pacific/Auckland (UTC+13 in March), so the org's
day differs from UTC's: NOW, 12:00 UTC on 12 March, is 01:00 on 13 March there. Through HTTP the
org is in America/Los_Angeles and the values sit around the real "now", with margins of minutes.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo

import pytest

from contacts.models import Contact, SmartListView
from contacts.search import SearchCompiler
from contacts.testing import make_contact
from crm.errors import InvalidInput
from customization.models import CustomField
from orgs.tests.factories import OrganizationFactory

NOW = dt.datetime(2024, 3, 12, 12, 0, tzinfo=dt.UTC)  # 01:00 on 13 March in Auckland
SECOND = dt.timedelta(seconds=1)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


# name: (call_at, due); created_at is call_at (or long ago).
PEOPLE = {
    "Past": (NOW - SECOND, "2024-03-12"),  # 12 March: UTC's today, Auckland's yesterday
    "Midnight": (utc("2024-03-12T11:00:00"), "2024-03-13"),  # 00:00 on 13 March in Auckland: today's start
    "Now": (NOW, None),
    "Tonight": (utc("2024-03-13T10:59:59"), "2024-03-14"),  # 23:59:59 on 13 March in Auckland
    "Tomorrow": (utc("2024-03-13T11:00:00"), "2024-03-20"),  # 00:00 on 14 March; 20 March = NOW + 7 days there
    "Week": (NOW + dt.timedelta(days=7), "2024-03-21"),
    "Later": (NOW + dt.timedelta(days=7) + SECOND, None),
    "Empty": (None, None),
}


@pytest.fixture
def org(db):
    org = OrganizationFactory(name="Auckland org", timezone="Pacific/Auckland")
    CustomField.objects.create(org=org, key="due", name="Due", data_type="date")
    CustomField.objects.create(org=org, key="call_at", name="Call at", data_type="datetime")
    for name, (call_at, due) in PEOPLE.items():
        custom = {"due": due, "call_at": call_at.isoformat() if call_at else None}
        created_at = call_at or dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        make_contact(org=org, name=name, first_name=name, created_at=created_at, custom=custom)
    return org


def cond(field, op, value=...):
    return {"field": field, "op": op} | ({} if value is ... else {"value": value})


def one(condition) -> dict:
    return {"query": {"groups": [{"conditions": [condition]}]}}


def matches(org, condition, now=NOW) -> set[str]:
    plan = SearchCompiler.for_org(org, now=now).compile_request(one(condition))
    return {c.first_name for c in plan.filter(Contact.objects.for_org(org.id))}


DAY = {"amount": 1, "unit": "days"}
WEEK = {"amount": 7, "unit": "days"}

CASES = [
    # datetime: today is [00:00, 24:00) of 13 March in Auckland
    ("custom.call_at", "today", ..., {"Past", "Midnight", "Now", "Tonight"}),
    ("created_at", "today", ..., {"Past", "Midnight", "Now", "Tonight"}),
    # datetime: now <= value <= now + span, both ends included
    ("custom.call_at", "within_next", DAY, {"Now", "Tonight", "Tomorrow"}),
    ("custom.call_at", "within_next", {"amount": 12, "unit": "hours"}, {"Now"}),
    ("custom.call_at", "within_next", WEEK, {"Now", "Tonight", "Tomorrow", "Week"}),
    ("custom.call_at", "within_next", {"amount": 1, "unit": "weeks"}, {"Now", "Tonight", "Tomorrow", "Week"}),
    ("custom.call_at", "within_next", {"amount": 1, "unit": "months"}, {"Now", "Tonight", "Tomorrow", "Week", "Later"}),
    ("created_at", "within_next", DAY, {"Now", "Tonight", "Tomorrow"}),
    ("custom.call_at", "more_than_ahead", WEEK, {"Later"}),
    ("custom.call_at", "more_than_ahead", DAY, {"Week", "Later"}),
    ("created_at", "more_than_ahead", {"amount": 1, "unit": "years"}, set()),
    # date: today is 13 March in Auckland (12 March in UTC would be "Past")
    ("custom.due", "today", ..., {"Midnight"}),
    ("custom.due", "within_next", DAY, {"Midnight", "Tonight"}),
    ("custom.due", "within_next", {"amount": 1, "unit": "hours"}, {"Midnight"}),
    ("custom.due", "within_next", WEEK, {"Midnight", "Tonight", "Tomorrow"}),
    ("custom.due", "more_than_ahead", WEEK, {"Week"}),
    ("custom.due", "more_than_ahead", DAY, {"Tomorrow", "Week"}),
    ("custom.due", "more_than_ahead", {"amount": 1, "unit": "months"}, set()),
]


@pytest.mark.parametrize(("field", "op", "value", "expected"), CASES, ids=[f"{f}-{o}-{v}" for f, o, v, _ in CASES])
def test_future_operators_count_from_now_in_the_orgs_time_zone(org, field, op, value, expected):
    assert matches(org, cond(field, op, value)) == expected


def test_within_last_and_more_than_ago_still_count_back(org):
    assert matches(org, cond("custom.call_at", "within_last", DAY)) >= {"Past", "Midnight", "Now"}
    assert "Tomorrow" in matches(org, cond("custom.call_at", "within_last", DAY))  # no upper bound, as before
    assert matches(org, cond("custom.due", "more_than_ago", DAY)) == set()  # 12 March is not before 12 March


def test_a_saved_view_using_within_next_moves_with_the_clock(org):
    """The compiler reads "now" when it compiles, so the same stored query selects other contacts later."""
    view = SmartListView.objects.create(
        org=org, name="Calls in the next day", query=one(cond("custom.call_at", "within_next", DAY))["query"]
    )
    week_later = NOW + dt.timedelta(days=7)
    for now, expected in ((NOW, {"Now", "Tonight", "Tomorrow"}), (week_later, {"Week", "Later"})):
        plan = SearchCompiler.for_org(org, now=now).compile_view(view)
        assert {c.first_name for c in plan.filter(Contact.objects.for_org(org.id))} == expected
        assert matches(org, cond("view", "in", [view.id]), now=now) == expected  # a view inside a query too


@pytest.mark.parametrize(
    ("value", "attr", "code"),
    [
        ({"amount": 0, "unit": "days"}, "value.amount", "out_of_range"),
        ({"amount": -3, "unit": "days"}, "value.amount", "out_of_range"),
        ({"amount": 1, "unit": "fortnights"}, "value.unit", "invalid_choice"),
        ({"amount": 100000, "unit": "years"}, "value", "out_of_range"),
        (7, "value", "wrong_type"),
    ],
)
def test_invalid_spans_are_named(org, value, attr, code):
    for op in ("within_next", "more_than_ahead"):
        for field in ("custom.due", "custom.call_at", "created_at"):
            with pytest.raises(InvalidInput) as exc:
                matches(org, cond(field, op, value))
            assert [(e.attr, e.code) for e in exc.value.field_errors] == [(f"query.groups.0.conditions.0.{attr}", code)]


# --- through HTTP, around the real "now" ------------------------------------------------------

URL = "/api/v1/contacts/search"
LA = zoneinfo.ZoneInfo("America/Los_Angeles")


def todays_start(tz) -> dt.datetime:
    """Today's 00:00 in `tz`, waiting out the day's last minute so a test cannot straddle midnight."""
    now = dt.datetime.now(tz)
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), tzinfo=tz)
    if tomorrow - now < dt.timedelta(minutes=1):
        time.sleep((tomorrow - now).total_seconds() + 1)
    return dt.datetime.combine(dt.datetime.now(tz).date(), dt.time(), tzinfo=tz)


@pytest.fixture
def la_contacts(alice):
    """Contacts created through the API, in an org in Los Angeles: name -> (call_at, due)."""
    alice.org.timezone = "America/Los_Angeles"
    alice.org.save()
    CustomField.objects.create(org=alice.org, key="due", name="Due", data_type="date")
    CustomField.objects.create(org=alice.org, key="call_at", name="Call at", data_type="datetime")
    start = todays_start(LA)
    end = dt.datetime.combine(start.date() + dt.timedelta(days=1), dt.time(), tzinfo=LA)
    now = dt.datetime.now(dt.UTC)
    today = start.date()
    people = {
        "Day start": (start, today),
        "Day end": (end - SECOND, None),
        "Just before": (start - SECOND, today - dt.timedelta(days=1)),
        "Tomorrow 00:00": (end, today + dt.timedelta(days=1)),
        "In a day less 5 min": (now + dt.timedelta(days=1, minutes=-5), today + dt.timedelta(days=2)),
        "In a day and 5 min": (now + dt.timedelta(days=1, minutes=5), None),
        "An hour ago": (now - dt.timedelta(hours=1), None),
    }
    for name, (call_at, due) in people.items():
        custom = {"call_at": call_at.astimezone(dt.UTC).isoformat()} | ({"due": due.isoformat()} if due else {})
        response = alice.client.post("/api/v1/contacts", {"name": name, "custom": custom}, format="json")
        assert response.status_code == 201, response.content
    return people


def found(actor, condition) -> set[str]:
    response = actor.client.post(URL, one(condition), format="json")
    assert response.status_code == 200, response.content
    return {c["name"] for c in response.json()["results"]}


def test_today_is_the_orgs_day_through_http(alice, la_contacts):
    assert found(alice, cond("custom.call_at", "today")) >= {"Day start", "Day end"}
    assert not found(alice, cond("custom.call_at", "today")) & {"Just before", "Tomorrow 00:00"}
    assert found(alice, cond("custom.due", "today")) == {"Day start"}


def test_within_next_and_more_than_ahead_through_http(alice, la_contacts):
    in_a_day = found(alice, cond("custom.call_at", "within_next", DAY))
    assert "In a day less 5 min" in in_a_day and "Tomorrow 00:00" in in_a_day
    assert not in_a_day & {"In a day and 5 min", "An hour ago", "Day start", "Just before"}
    assert found(alice, cond("custom.call_at", "more_than_ahead", DAY)) == {"In a day and 5 min"}
    assert found(alice, cond("custom.due", "within_next", DAY)) == {"Day start", "Tomorrow 00:00"}
    assert found(alice, cond("custom.due", "more_than_ahead", DAY)) == {"In a day less 5 min"}


@pytest.mark.parametrize(
    ("condition", "attr", "code"),
    [
        (cond("custom.due", "within_next", {"amount": 0, "unit": "days"}), "value.amount", "out_of_range"),
        (cond("created_at", "more_than_ahead", {"amount": 1, "unit": "eons"}), "value.unit", "invalid_choice"),
        (cond("created_at", "within_next", {"amount": 1}), "value.unit", "invalid_choice"),
        (cond("custom.call_at", "more_than_ahead", {"amount": 100000, "unit": "years"}), "value", "out_of_range"),
        (cond("custom.due", "today", {"amount": 1, "unit": "days"}), "value", "unexpected_value"),
        (cond("name", "within_next", DAY), "op", "invalid_operator"),
    ],
)
def test_invalid_future_conditions_are_422_problems(alice, la_contacts, condition, attr, code):
    response = alice.client.post(URL, one(condition), format="json")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert [(e["attr"], e["code"]) for e in body["errors"]] == [(f"query.groups.0.conditions.0.{attr}", code)]


def test_the_field_catalog_lists_the_future_operators_for_dates_and_datetimes(alice, la_contacts):
    fields = {f["field"]: f for f in alice.client.get("/api/v1/contacts/fields").json()["fields"]}
    for name in ("created_at", "updated_at", "custom.due", "custom.call_at"):
        assert {"within_next", "more_than_ahead", "today"} <= set(fields[name]["operators"]), name
    assert "today" not in fields["name"]["operators"]
