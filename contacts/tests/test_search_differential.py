"""Differential test: the API's answers against a plain-Python reading of DESIGN's semantics.

A few hundred contacts with random values (seeded) are created once; many random filters are
sent to POST /contacts/search and each answer (count and first page, newest first) must equal
what `matches()` below computes. The Python side is deliberately naive: no SQL ideas in it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import random
import zoneinfo

import pytest
from django.db import transaction
from knox.models import AuthToken
from rest_framework.test import APIClient

from contacts.models import Contact, attach_tags_and_custom
from contacts.testing import make_contact, make_contacts
from customization.models import CustomField
from orgs.models import Membership
from orgs.tests.factories import MembershipFactory, OrganizationFactory, UserFactory

TZ_NAME = "Europe/Berlin"
TZ = zoneinfo.ZoneInfo(TZ_NAME)
SEED = 20240312
N_CONTACTS = 300
N_QUERIES = 120

COMPANIES = ["Acme", "ACME corp", "acme", "Globex", "Initech", "", "Umbrella", "globex GmbH"]
TAGS = ["vip", "cold", "lead", "replied-interested", "customer"]
TIERS = ["Gold", "Silver", "Bronze"]
CHANNELS = ["Email", "SMS", "Call"]
SEGMENTS = ["Enterprise", "smb", "SMB", "mid market", ""]
NOW = dt.datetime.now(dt.UTC)


def _random_instant(rng):
    return NOW - dt.timedelta(days=rng.uniform(-30, 800), seconds=rng.randint(0, 86399))


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    rng = random.Random(SEED)
    with django_db_blocker.unblock(), transaction.atomic():
        org = OrganizationFactory(name="Differential org", timezone=TZ_NAME)
        owner = MembershipFactory(org=org, user=UserFactory(username="diff-owner@a.test"), role=Membership.Role.OWNER)
        other = MembershipFactory(org=org, user=UserFactory(username="diff-other@a.test"))
        users = [owner.user_id, other.user_id]
        for key, data_type, options in (
            ("score", "number", []),
            ("tier", "single_select", TIERS),
            ("channels", "multi_select", CHANNELS),
            ("renewal", "date", []),
            ("seen", "datetime", []),
            ("flag", "boolean", []),
            ("segment", "text", []),
        ):
            CustomField.objects.create(org=org, key=key, name=key.title(), data_type=data_type, options=options)
        contacts = []
        for index in range(N_CONTACTS):
            custom = {}
            if rng.random() < 0.7:
                custom["score"] = rng.choice([rng.randint(-50, 50), round(rng.uniform(-50, 50), 2)])
            if rng.random() < 0.6:
                custom["tier"] = rng.choice(TIERS)
            if rng.random() < 0.6:
                custom["channels"] = rng.sample(CHANNELS, rng.randint(1, 3))
            if rng.random() < 0.6:
                custom["renewal"] = (NOW.date() + dt.timedelta(days=rng.randint(-400, 60))).isoformat()
            if rng.random() < 0.6:
                custom["seen"] = _random_instant(rng).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if rng.random() < 0.6:
                custom["flag"] = rng.random() < 0.5
            segment = rng.choice(SEGMENTS)
            if segment and rng.random() < 0.8:
                custom["segment"] = segment
            contacts.append(
                dict(
                    name=f"Person {index}",
                    first_name=f"Person{index}",
                    company=rng.choice(COMPANIES),
                    email=rng.choice([None, f"p{index}@Example.test", f"P{index}@acme.test"]),
                    tags=rng.sample(TAGS, rng.randint(0, 3)),
                    dnc=rng.random() < 0.3,
                    assigned_to_id=rng.choice([None, *users]),
                    custom=custom,
                    created_at=_random_instant(rng),
                )
            )
        make_contacts(org, contacts)
        make_contact(org=OrganizationFactory(name="Elsewhere"), name="Outsider", company="Acme")
        _, token = AuthToken.objects.create(user=owner.user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_ORG_ID=str(org.id))
        rows = [
            {**row, "tags": contact.tags, "custom": contact.custom}
            for contact, row in zip(
                attach_tags_and_custom(list(Contact.objects.filter(org=org).order_by("id"))),
                Contact.objects.filter(org=org).order_by("id").values(),
                strict=True,
            )
        ]
        yield {"client": client, "rows": rows, "users": users}
        transaction.set_rollback(True)


# --- the reference semantics ------------------------------------------------------------------


def value_of(row, field):
    if field.startswith("custom."):
        return row["custom"].get(field.removeprefix("custom."))
    return row["assigned_to_id"] if field == "assigned_to" else row[field]


def is_empty(value):
    return value is None or value == "" or value == []


def day_window(text):
    day = dt.date.fromisoformat(text)
    start = dt.datetime(day.year, day.month, day.day, tzinfo=TZ)
    nxt = day + dt.timedelta(days=1)
    return start, dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=TZ)


def instant(text):
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def cutoff(span, now):
    amount, unit = span["amount"], span["unit"]
    if unit == "hours":
        return now - dt.timedelta(hours=amount)
    local = now.astimezone(TZ).replace(tzinfo=None)
    if unit in ("days", "weeks"):
        local -= dt.timedelta(days=amount * (7 if unit == "weeks" else 1))
    else:
        months = amount * (12 if unit == "years" else 1)
        year, month = divmod(local.year * 12 + local.month - 1 - months, 12)
        local = local.replace(year=year, month=month + 1, day=min(local.day, calendar.monthrange(year, month + 1)[1]))
    return local.replace(tzinfo=TZ)


def matches(row, condition, now, kinds):
    field, op, target = condition["field"], condition["op"], condition.get("value")
    value = value_of(row, field)
    kind = kinds[field]
    if op == "is_empty":
        return is_empty(value)
    if op == "is_not_empty":
        return not is_empty(value)
    if op in ("neq", "not_contains", "not_in"):
        positive = {"neq": "eq", "not_contains": "contains", "not_in": "in"}[op]
        return is_empty(value) or not matches(row, {**condition, "op": positive}, now, kinds)
    if is_empty(value):
        return False
    if kind == "text":
        text = value.lower()
        if op == "eq":
            return text == target.lower()
        if op == "in":
            return text in [t.lower() for t in target]
        if op == "contains":
            return target.lower() in text
        if op == "starts_with":
            return text.startswith(target.lower())
        if op == "ends_with":
            return text.endswith(target.lower())
    if kind == "tags":
        have = {v.lower() for v in value}
        wanted = [target.lower()] if isinstance(target, str) else [t.lower() for t in target]
        return any(w in have for w in wanted) if op == "contains_any" else all(w in have for w in wanted)
    if kind in ("boolean", "user"):
        return value in target if op == "in" else value == target
    # ordered kinds: turn stored value and target into comparable bounds
    if kind == "number":
        x = float(value)
    elif kind == "date":
        x = dt.date.fromisoformat(value)
    else:
        x = value if isinstance(value, dt.datetime) else instant(value)
    if op in ("within_last", "more_than_ago"):
        edge = cutoff(target, now)
        if kind == "date":
            edge = edge.date()
        return x >= edge if op == "within_last" else x < edge

    def lower_ok(t, inclusive):
        if kind == "datetime" and len(t) == 10:
            start, end = day_window(t)
            return x >= (start if inclusive else end)
        bound = float(t) if kind == "number" else dt.date.fromisoformat(t) if kind == "date" else instant(t)
        return x >= bound if inclusive else x > bound

    def upper_ok(t, inclusive):
        if kind == "datetime" and len(t) == 10:
            start, end = day_window(t)
            return x < (end if inclusive else start)
        bound = float(t) if kind == "number" else dt.date.fromisoformat(t) if kind == "date" else instant(t)
        return x <= bound if inclusive else x < bound

    return {
        "eq": lambda: lower_ok(target, True) and upper_ok(target, True),
        "gt": lambda: lower_ok(target, False),
        "gte": lambda: lower_ok(target, True),
        "lt": lambda: upper_ok(target, False),
        "lte": lambda: upper_ok(target, True),
        "between": lambda: lower_ok(target[0], True) and upper_ok(target[1], True),
    }[op]()


# --- random filters ---------------------------------------------------------------------------

KINDS = {
    "name": "text",
    "company": "text",
    "email": "text",
    "tags": "tags",
    "dnc": "boolean",
    "assigned_to": "user",
    "created_at": "datetime",
    "custom.score": "number",
    "custom.tier": "text",
    "custom.channels": "tags",
    "custom.renewal": "date",
    "custom.seen": "datetime",
    "custom.flag": "boolean",
    "custom.segment": "text",
}
OPS = {
    "text": [
        "eq",
        "neq",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "in",
        "not_in",
        "is_empty",
        "is_not_empty",
    ],
    "tags": ["contains", "not_contains", "contains_any", "contains_all", "is_empty", "is_not_empty"],
    "boolean": ["eq", "is_empty", "is_not_empty"],
    "user": ["eq", "neq", "in", "not_in", "is_empty", "is_not_empty"],
    "number": ["eq", "neq", "gt", "gte", "lt", "lte", "between", "is_empty", "is_not_empty"],
    "date": ["eq", "gt", "gte", "lt", "lte", "between", "within_last", "more_than_ago", "is_empty", "is_not_empty"],
}
OPS["datetime"] = OPS["date"]


def random_condition(rng, world):
    rows = world["rows"]
    field = rng.choice(list(KINDS))
    kind = KINDS[field]
    op = rng.choice(OPS[kind])
    condition = {"field": field, "op": op}
    if op in ("is_empty", "is_not_empty"):
        return condition

    def sample():  # mostly values that exist, so conditions match something
        if kind == "text":
            if field == "custom.tier":
                return rng.choice(TIERS).upper() if op in ("eq", "neq", "in", "not_in") else rng.choice(["ol", "S"])
            pool = [v for v in (value_of(r, field) for r in rows) if v] or ["x"]
            text = rng.choice(pool)
            if op in ("contains", "not_contains"):
                start = rng.randrange(len(text))
                text = text[start : start + rng.randint(1, 4)]
            elif op == "starts_with":
                text = text[: rng.randint(1, len(text))]
            elif op == "ends_with":
                text = text[-rng.randint(1, len(text)) :]
            text = text if text.strip() else "a"
            return text.swapcase() if rng.random() < 0.5 else text
        if kind == "tags":
            return rng.choice(CHANNELS).lower() if field == "custom.channels" else rng.choice(TAGS).upper()
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "user":
            return rng.choice(world["users"] + [999999])
        if kind == "number":
            stored = [r["custom"]["score"] for r in rows if "score" in r["custom"]]
            return rng.choice(stored) if rng.random() < 0.6 else rng.randint(-60, 60)
        if kind == "date":
            return (NOW.date() + dt.timedelta(days=rng.randint(-420, 70))).isoformat()
        moment = _random_instant(rng)
        if rng.random() < 0.5:
            return moment.astimezone(TZ).date().isoformat()  # a whole day in Berlin
        if field == "created_at" and op == "eq":
            return rng.choice(rows)["created_at"].isoformat().replace("+00:00", "Z")
        return moment.isoformat().replace("+00:00", "Z")

    if op in ("in", "not_in", "contains_any", "contains_all"):
        condition["value"] = [sample() for _ in range(rng.randint(1, 3))]
    elif op == "between":
        lo, hi = sample(), sample()
        condition["value"] = [lo, hi] if rng.random() < 0.85 else [hi, lo]
    elif op in ("within_last", "more_than_ago"):
        condition["value"] = {
            "amount": rng.randint(1, 40),
            "unit": rng.choice(["hours", "days", "weeks", "months", "years"]),
        }
    else:
        condition["value"] = sample()
    return condition


def test_api_answers_match_the_reference_semantics(world, db):
    rng = random.Random(SEED + 1)
    client, rows = world["client"], world["rows"]
    checked_nonempty = 0
    for _ in range(N_QUERIES):
        groups = [[random_condition(rng, world) for _ in range(rng.randint(1, 3))] for _ in range(rng.randint(1, 3))]
        body = {"query": {"groups": [{"conditions": g} for g in groups]}, "limit": 200}
        now = dt.datetime.now(dt.UTC)
        response = client.post("/api/v1/contacts/search", body, format="json")
        assert response.status_code == 200, (body, response.content)
        expected = [r for r in rows if any(all(matches(r, c, now, KINDS) for c in g) for g in groups)]
        expected.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
        answer = response.json()
        assert answer["count"] == len(expected), body
        assert [c["id"] for c in answer["results"]] == [r["id"] for r in expected[:200]], body
        checked_nonempty += bool(expected)
    assert checked_nonempty > N_QUERIES // 4  # the random filters do select things


def test_sorting_by_custom_number_matches_the_reference(world, db):
    response = world["client"].post(
        "/api/v1/contacts/search",
        {"sort": [{"field": "custom.score", "direction": "asc"}], "limit": 200},
        format="json",
    )
    rows = world["rows"]
    with_score = sorted((r for r in rows if "score" in r["custom"]), key=lambda r: (r["custom"]["score"], r["id"]))
    without = sorted((r for r in rows if "score" not in r["custom"]), key=lambda r: r["id"])
    assert [c["id"] for c in response.json()["results"]] == [r["id"] for r in (with_score + without)[:200]]
