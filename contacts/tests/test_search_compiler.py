"""The search compiler, operator by operator and type by type, on a small fixed data set.

Org time zone is America/New_York and "now" is fixed, so day boundaries and relative dates are
checked against hand-computed answers (DST starts 2024-03-10 in New York).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.db.models import Q

from contacts.models import Contact, SmartListView
from contacts.normalize import build_search_text
from contacts.search import FieldRegistry, SearchCompiler
from contacts.search.fields import PSEUDO_FIELDS
from contacts.search.operators import KINDS, OP_SHAPES, Context, drivers_of, tag_exists
from contacts.testing import make_contact
from crm.db_security import as_org
from crm.errors import InvalidInput
from customization.field_types import OPERATORS_BY_KIND
from customization.models import CustomField
from orgs.models import Membership
from orgs.tests.factories import MembershipFactory, OrganizationFactory, UserFactory

NOW = dt.datetime(2024, 3, 12, 12, 0, tzinfo=dt.UTC)
UTC = dt.UTC

CUSTOM_FIELDS = [
    ("segment", "text", []),
    ("bio", "textarea", []),
    ("score", "number", []),
    ("renewal", "date", []),
    ("last_seen", "datetime", []),
    ("vip_flag", "boolean", []),
    ("tier", "single_select", ["Gold", "Silver", "Bronze"]),
    ("channels", "multi_select", ["Email", "SMS", "Call"]),
    ("billing", "email", []),
    ("alt_phone", "phone", []),
    ("site", "url", []),
    ("odd__key", "text", []),
]


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Four contacts with hand-picked values, created once for the module and rolled back after."""
    with django_db_blocker.unblock(), transaction.atomic():
        org = OrganizationFactory(name="Compiler org", timezone="America/New_York")
        other = OrganizationFactory(name="Other org")
        alice = MembershipFactory(org=org, user=UserFactory(username="c-alice@a.test"), role=Membership.Role.OWNER)
        bob = MembershipFactory(org=org, user=UserFactory(username="c-bob@a.test"))
        for position, (key, data_type, options) in enumerate(CUSTOM_FIELDS):
            CustomField.objects.create(
                org=org,
                key=key,
                name=key.replace("_", " ").title(),
                data_type=data_type,
                options=options,
                position=position,
            )
        CustomField.objects.create(org=other, key="secret", name="Secret", data_type="text")

        def make(name, created_at, **values):
            search_text = build_search_text(name, values.get("email"), values.get("phone"), values.get("company", ""))
            return make_contact(org=org, name=name, created_at=created_at, search_text=search_text, **values)

        make(
            "Ada Lovelace",
            dt.datetime(2024, 3, 10, 12, 0, tzinfo=UTC),
            first_name="Ada",
            last_name="Lovelace",
            email="Ada@example.com",
            phone="+14155552671",
            company="Acme",
            source="webinar",
            notes="likes math",
            tags=["vip", "replied-interested"],
            assigned_to=alice.user,
            custom={
                "segment": "Enterprise",
                "bio": "Mathematician",
                "score": 10,
                "renewal": "2024-03-10",
                "last_seen": "2024-03-10T15:00:00.000000Z",
                "vip_flag": True,
                "tier": "Gold",
                "channels": ["Email", "SMS"],
                "billing": "Billing@acme.test",
                "alt_phone": "+14155550000",
                "site": "https://acme.test",
                "odd__key": "x",
            },
        )
        make(
            "Bob Stone",
            dt.datetime(2024, 3, 11, 3, 30, tzinfo=UTC),
            first_name="Bob",
            last_name="Stone",
            company="",
            dnc=True,
            custom={"segment": "smb", "score": 2.5, "vip_flag": False, "tier": "Silver", "channels": ["SMS"]},
        )
        make(
            "Cy Twombly",
            dt.datetime(2024, 3, 11, 5, 0, tzinfo=UTC),
            first_name="Cy",
            email="cy@art.test",
            company="ACME Corp",
            tags=["vip"],
            assigned_to=bob.user,
            custom={"score": -3, "renewal": "2024-01-01", "last_seen": "2024-01-01T03:00:00.000000Z"},
        )
        make("Dee", dt.datetime(2023, 1, 1, 0, 0, tzinfo=UTC), first_name="Dee", company="Other", tags=["cold"])
        make_contact(org=other, name="Not mine", company="Acme", tags=["vip"])
        Contact.objects.filter(org=org).update(updated_at=dt.datetime(2024, 3, 12, 9, 0, tzinfo=UTC))
        views = {
            name: SmartListView.objects.create(org=org, name=name, query={"groups": [{"conditions": [condition]}]})
            for name, condition in (
                ("acme", {"field": "company", "op": "contains", "value": "acme"}),
                ("cold", {"field": "tags", "op": "contains", "value": "cold"}),
            )
        }
        yield {"org": org, "alice": alice, "bob": bob, "views": views}
        transaction.set_rollback(True)


@pytest.fixture
def compiler(world, db):
    return SearchCompiler.for_org(world["org"], now=NOW)


def search(compiler, world, *conditions, groups=None, q=""):
    body = {"query": {"groups": groups or [{"conditions": list(conditions)}]}, "q": q}
    plan = compiler.compile_request(body)
    with as_org(world["org"].id):  # as a request runs it: `q` reads the org's haystacks through its view
        return {c.first_name for c in plan.filter(Contact.objects.for_org(world["org"].id))}


def cond(field, op, value=...):
    return {"field": field, "op": op} | ({} if value is ... else {"value": value})


ALL = {"Ada", "Bob", "Cy", "Dee"}

CASES = [
    # text: built-in columns
    ("company", "eq", "acme", {"Ada"}),
    ("company", "neq", "acme", {"Bob", "Cy", "Dee"}),
    ("company", "contains", "acme", {"Ada", "Cy"}),
    ("company", "not_contains", "acme", {"Bob", "Dee"}),
    ("company", "starts_with", "AC", {"Ada", "Cy"}),
    ("company", "ends_with", "corp", {"Cy"}),
    ("company", "in", ["ACME", "other"], {"Ada", "Dee"}),
    ("company", "not_in", ["acme"], {"Bob", "Cy", "Dee"}),
    ("company", "is_empty", ..., {"Bob"}),
    ("company", "is_not_empty", ..., {"Ada", "Cy", "Dee"}),
    ("email", "eq", "ADA@EXAMPLE.COM", {"Ada"}),
    ("email", "neq", "cy@art.test", {"Ada", "Bob", "Dee"}),
    ("email", "is_empty", ..., {"Bob", "Dee"}),
    ("email", "ends_with", ".test", {"Cy"}),
    ("phone", "eq", "(415) 555-2671", {"Ada"}),
    ("phone", "in", ["+14155552671", "nonsense"], {"Ada"}),
    ("phone", "contains", "555", {"Ada"}),
    ("phone", "not_contains", "555", {"Bob", "Cy", "Dee"}),
    ("name", "contains", "%", set()),
    ("name", "contains", "_", set()),
    ("name", "starts_with", "ada l", {"Ada"}),
    ("notes", "contains", "MATH", {"Ada"}),
    ("source", "eq", "Webinar", {"Ada"}),
    ("last_name", "is_empty", ..., {"Cy", "Dee"}),
    # text: custom types
    ("custom.segment", "eq", "ENTERPRISE", {"Ada"}),
    ("custom.segment", "neq", "smb", {"Ada", "Cy", "Dee"}),
    ("custom.segment", "contains", "TER", {"Ada"}),
    ("custom.segment", "not_contains", "ter", {"Bob", "Cy", "Dee"}),
    ("custom.segment", "in", ["smb", "enterprise"], {"Ada", "Bob"}),
    ("custom.segment", "not_in", ["smb"], {"Ada", "Cy", "Dee"}),
    ("custom.segment", "is_empty", ..., {"Cy", "Dee"}),
    ("custom.segment", "is_not_empty", ..., {"Ada", "Bob"}),
    ("custom.bio", "starts_with", "math", {"Ada"}),
    ("custom.tier", "eq", "gold", {"Ada"}),
    ("custom.tier", "neq", "Gold", {"Bob", "Cy", "Dee"}),
    ("custom.tier", "in", ["gold", "SILVER"], {"Ada", "Bob"}),
    ("custom.tier", "not_in", ["Gold"], {"Bob", "Cy", "Dee"}),
    ("custom.tier", "contains", "ol", {"Ada"}),
    ("custom.tier", "starts_with", "s", {"Bob"}),
    ("custom.tier", "ends_with", "D", {"Ada"}),
    ("custom.tier", "is_empty", ..., {"Cy", "Dee"}),
    ("custom.billing", "eq", "billing@ACME.test", {"Ada"}),
    ("custom.alt_phone", "eq", "415-555-0000", {"Ada"}),
    ("custom.alt_phone", "neq", "+14155550000", {"Bob", "Cy", "Dee"}),
    ("custom.site", "contains", "ACME", {"Ada"}),
    ("custom.odd__key", "eq", "X", {"Ada"}),
    ("custom.odd__key", "is_empty", ..., {"Bob", "Cy", "Dee"}),
    # tags and multi_select
    ("tags", "contains", "VIP", {"Ada", "Cy"}),
    ("tags", "not_contains", "vip", {"Bob", "Dee"}),
    ("tags", "contains_any", ["cold", "replied-interested"], {"Ada", "Dee"}),
    ("tags", "contains_all", ["vip", "Replied-Interested"], {"Ada"}),
    ("tags", "is_empty", ..., {"Bob"}),
    ("tags", "is_not_empty", ..., {"Ada", "Cy", "Dee"}),
    ("custom.channels", "contains", "sms", {"Ada", "Bob"}),
    ("custom.channels", "not_contains", "Email", {"Bob", "Cy", "Dee"}),
    ("custom.channels", "contains_any", ["email", "call"], {"Ada"}),
    ("custom.channels", "contains_all", ["email", "sms"], {"Ada"}),
    ("custom.channels", "is_empty", ..., {"Cy", "Dee"}),
    ("custom.channels", "is_not_empty", ..., {"Ada", "Bob"}),
    # boolean
    ("dnc", "eq", True, {"Bob"}),
    ("dnc", "eq", False, {"Ada", "Cy", "Dee"}),
    ("dnc", "is_empty", ..., set()),
    ("dnc", "is_not_empty", ..., ALL),
    ("custom.vip_flag", "eq", True, {"Ada"}),
    ("custom.vip_flag", "eq", False, {"Bob"}),
    ("custom.vip_flag", "is_empty", ..., {"Cy", "Dee"}),
    ("custom.vip_flag", "is_not_empty", ..., {"Ada", "Bob"}),
    # number: numeric, never textual ("10" > "9" as numbers)
    ("custom.score", "eq", 10, {"Ada"}),
    ("custom.score", "eq", 10.0, {"Ada"}),
    ("custom.score", "eq", 2.5, {"Bob"}),
    ("custom.score", "neq", 10, {"Bob", "Cy", "Dee"}),
    ("custom.score", "gt", 9, {"Ada"}),
    ("custom.score", "gt", 2.5, {"Ada"}),
    ("custom.score", "gte", 2.5, {"Ada", "Bob"}),
    ("custom.score", "lt", 0, {"Cy"}),
    ("custom.score", "lte", 2.5, {"Bob", "Cy"}),
    ("custom.score", "between", [-3, 2.5], {"Bob", "Cy"}),
    ("custom.score", "is_empty", ..., {"Dee"}),
    ("custom.score", "is_not_empty", ..., {"Ada", "Bob", "Cy"}),
    # date (custom)
    ("custom.renewal", "eq", "2024-03-10", {"Ada"}),
    ("custom.renewal", "eq", "2024-03-10T12:00:00Z", {"Ada"}),
    ("custom.renewal", "eq", "2024-03-10T02:00:00Z", set()),  # still 9 March in New York
    ("custom.renewal", "gt", "2024-01-01", {"Ada"}),
    ("custom.renewal", "gte", "2024-01-01", {"Ada", "Cy"}),
    ("custom.renewal", "lt", "2024-03-10", {"Cy"}),
    ("custom.renewal", "lte", "2024-03-10", {"Ada", "Cy"}),
    ("custom.renewal", "between", ["2024-01-01", "2024-03-10"], {"Ada", "Cy"}),
    ("custom.renewal", "within_last", {"amount": 30, "unit": "days"}, {"Ada"}),
    ("custom.renewal", "more_than_ago", {"amount": 30, "unit": "days"}, {"Cy"}),
    ("custom.renewal", "within_last", {"amount": 1, "unit": "years"}, {"Ada", "Cy"}),
    ("custom.renewal", "is_empty", ..., {"Bob", "Dee"}),
    ("custom.renewal", "is_not_empty", ..., {"Ada", "Cy"}),
    # datetime: a date-only value is that day in New York
    ("created_at", "eq", "2024-03-10", {"Ada", "Bob"}),
    ("created_at", "gt", "2024-03-10", {"Cy"}),
    ("created_at", "gte", "2024-03-10", {"Ada", "Bob", "Cy"}),
    ("created_at", "lt", "2024-03-10", {"Dee"}),
    ("created_at", "lte", "2024-03-10", {"Ada", "Bob", "Dee"}),
    ("created_at", "between", ["2024-03-10", "2024-03-10"], {"Ada", "Bob"}),
    ("created_at", "between", ["2024-03-10T12:00:00Z", "2024-03-11T05:00:00Z"], {"Ada", "Bob", "Cy"}),
    ("created_at", "eq", "2024-03-10T12:00:00Z", {"Ada"}),
    ("created_at", "eq", "2024-03-10T08:00:00", {"Ada"}),  # naive = org time zone (EDT)
    ("created_at", "gt", "2024-03-10T12:00:00Z", {"Bob", "Cy"}),
    ("created_at", "within_last", {"amount": 1, "unit": "days"}, set()),
    ("created_at", "within_last", {"amount": 2, "unit": "days"}, {"Ada", "Bob", "Cy"}),  # at the cutoff counts
    ("created_at", "more_than_ago", {"amount": 2, "unit": "days"}, {"Dee"}),
    ("created_at", "within_last", {"amount": 60, "unit": "hours"}, {"Ada", "Bob", "Cy"}),
    ("created_at", "within_last", {"amount": 1, "unit": "weeks"}, {"Ada", "Bob", "Cy"}),
    ("created_at", "within_last", {"amount": 1, "unit": "months"}, {"Ada", "Bob", "Cy"}),
    ("created_at", "more_than_ago", {"amount": 1, "unit": "years"}, {"Dee"}),
    ("created_at", "is_empty", ..., set()),
    ("updated_at", "eq", "2024-03-12", ALL),
    ("custom.last_seen", "eq", "2023-12-31", {"Cy"}),  # 03:00Z on 1 Jan is 31 Dec in New York
    ("custom.last_seen", "eq", "2024-03-10T15:00:00Z", {"Ada"}),
    ("custom.last_seen", "eq", "2024-03-10T11:00:00-04:00", {"Ada"}),
    ("custom.last_seen", "gt", "2024-01-01", {"Ada"}),
    ("custom.last_seen", "lt", "2024-01-01", {"Cy"}),
    ("custom.last_seen", "between", ["2023-12-31", "2024-03-10"], {"Ada", "Cy"}),
    ("custom.last_seen", "within_last", {"amount": 7, "unit": "days"}, {"Ada"}),
    ("custom.last_seen", "more_than_ago", {"amount": 7, "unit": "days"}, {"Cy"}),
    ("custom.last_seen", "is_empty", ..., {"Bob", "Dee"}),
    ("custom.last_seen", "is_not_empty", ..., {"Ada", "Cy"}),
    ("created_at", "is_not_empty", ..., ALL),
    # future and today (NOW is 08:00 on 12 March in New York; every stored date is in the past)
    ("updated_at", "today", ..., ALL),
    ("created_at", "today", ..., set()),
    ("created_at", "within_next", {"amount": 1, "unit": "years"}, set()),
    ("custom.last_seen", "more_than_ahead", {"amount": 1, "unit": "hours"}, set()),
    ("custom.renewal", "today", ..., set()),
    ("custom.renewal", "within_next", {"amount": 1, "unit": "years"}, set()),
    ("custom.renewal", "more_than_ahead", {"amount": 1, "unit": "days"}, set()),
    # saved-view membership: view names resolved in the test
    ("view", "in", ["acme"], {"Ada", "Cy"}),
    ("view", "in", ["acme", "cold"], {"Ada", "Cy", "Dee"}),
    ("view", "not_in", ["acme"], {"Bob", "Dee"}),
    ("view", "not_in", ["acme", "cold"], {"Bob"}),
    # assigned_to: ids resolved in the test
    ("assigned_to", "eq", "alice", {"Ada"}),
    ("assigned_to", "neq", "alice", {"Bob", "Cy", "Dee"}),
    ("assigned_to", "in", ["alice", "bob"], {"Ada", "Cy"}),
    ("assigned_to", "not_in", ["alice"], {"Bob", "Cy", "Dee"}),
    ("assigned_to", "is_empty", ..., {"Bob", "Dee"}),
    ("assigned_to", "is_not_empty", ..., {"Ada", "Cy"}),
]


def _resolve_users(value, world):
    if isinstance(value, list):
        return [_resolve_users(v, world) for v in value]
    return world[value].user_id if value in ("alice", "bob") else value


@pytest.mark.parametrize(("field", "op", "value", "expected"), CASES, ids=[f"{f}-{o}-{v}" for f, o, v, _ in CASES])
def test_operator_results(compiler, world, field, op, value, expected):
    if field == "assigned_to":
        value = _resolve_users(value, world)
    if field == "view":
        value = [world["views"][name].id for name in value]
    assert search(compiler, world, cond(field, op, value)) == expected


def test_every_operator_of_every_kind_has_a_case():
    covered = {(KINDS_BY_FIELD[f], op) for f, op, _, _ in CASES}
    missing = {(kind, op) for kind, ops in OPERATORS_BY_KIND.items() for op in ops} - covered
    assert not missing


KINDS_BY_FIELD = {
    f.name: f.kind
    for f in FieldRegistry.from_definitions(
        [CustomField(key=k, name=k, data_type=t, options=o) for k, t, o in CUSTOM_FIELDS]
    ).all()
} | {name: f.kind for name, f in PSEUDO_FIELDS.items()}


def test_operator_registry_matches_the_field_type_registry():
    for kind, ops in OPERATORS_BY_KIND.items():
        for op in ops:
            assert hasattr(KINDS[kind], f"op_{op}"), (kind, op)
    assert set(OP_SHAPES) <= {op for ops in OPERATORS_BY_KIND.values() for op in ops}


def test_groups_or_and_conditions_and(compiler, world):
    groups = [
        {"conditions": [cond("tags", "contains", "vip"), cond("company", "eq", "acme")]},
        {"conditions": [cond("dnc", "eq", True)]},
    ]
    assert search(compiler, world, groups=groups) == {"Ada", "Bob"}


def test_no_groups_is_every_contact_of_the_org_and_q_is_anded(compiler, world):
    plan = compiler.compile_request({})
    assert {c.first_name for c in plan.filter(Contact.objects.for_org(world["org"].id))} == ALL
    assert search(compiler, world, cond("tags", "contains", "vip"), q="twombly") == {"Cy"}


def test_sort_by_custom_number_puts_empty_last_both_ways(compiler, world):
    for direction, expected in (("asc", ["Cy", "Bob", "Ada", "Dee"]), ("desc", ["Ada", "Bob", "Cy", "Dee"])):
        plan = compiler.compile_request({"sort": [{"field": "custom.score", "direction": direction}]})
        rows = plan.sort.apply(plan.filter(Contact.objects.for_org(world["org"].id)))
        assert [c.first_name for c in rows] == expected


def test_sort_by_custom_date_is_chronological_and_builtins_are_plain_columns(compiler, world):
    plan = compiler.compile_request({"sort": [{"field": "custom.renewal"}, {"field": "name", "direction": "desc"}]})
    rows = plan.sort.apply(plan.filter(Contact.objects.for_org(world["org"].id)))
    assert [c.first_name for c in rows] == ["Cy", "Ada", "Dee", "Bob"]
    plan = compiler.compile_request({"sort": [{"field": "created_at", "direction": "desc"}]})
    assert plan.sort.order_by == ["-created_at", "-id"] and not plan.sort.annotations


def test_a_fields_sort_value_is_what_sort_orders_by(compiler, world):
    """`sort_value` (the admin's sortable columns): the expression `sort` orders by; None for a field
    that does not sort (multi-select, long text) or that the org does not have."""
    value = compiler.sort_value("custom.score")
    rows = Contact.objects.for_org(world["org"].id).order_by(value.asc(nulls_last=True), "id")
    plan = compiler.compile_request({"sort": [{"field": "custom.score"}]})
    assert [c.first_name for c in rows] == [c.first_name for c in plan.sort.apply(plan.filter(rows))]
    assert [c.first_name for c in rows] == ["Cy", "Bob", "Ada", "Dee"]
    for name in ("custom.channels", "custom.bio", "custom.secret", "custom.nope"):
        assert compiler.sort_value(name) is None


def test_default_sort_is_newest_first_with_id_tiebreak(compiler):
    assert compiler.compile_request({}).sort.order_by == ["-created_at", "-id"]


def test_custom_fields_of_another_org_are_unknown(compiler):
    with pytest.raises(InvalidInput) as exc:
        compiler.compile_request({"query": {"groups": [{"conditions": [cond("custom.secret", "eq", "x")]}]}})
    assert [(e.attr, e.code) for e in exc.value.field_errors] == [
        ("query.groups.0.conditions.0.field", "unknown_custom_field")
    ]


def errors_of(compiler, body):
    with pytest.raises(InvalidInput) as exc:
        compiler.compile_request(body)
    return [(e.attr, e.code) for e in exc.value.field_errors]


def one(condition):
    return {"query": {"groups": [{"conditions": [condition]}]}}


P = "query.groups.0.conditions.0"
INVALID = [
    (cond("nope", "eq", "x"), f"{P}.field", "unknown_field"),
    (cond("custom.nope", "eq", "x"), f"{P}.field", "unknown_custom_field"),
    (cond("custom.segment'; drop table x; --", "eq", "x"), f"{P}.field", "unknown_custom_field"),
    (cond("custom__segment", "eq", "x"), f"{P}.field", "unknown_field"),
    (cond("tags__len", "eq", "x"), f"{P}.field", "unknown_field"),
    (cond("x" * 5000, "eq", "x"), f"{P}.field", "invalid"),
    (cond({"a": 1}, "eq", "x"), f"{P}.field", "wrong_type"),
    (cond("name", "frobnicate", "x"), f"{P}.op", "unknown_operator"),
    (cond("name", "gt", "x"), f"{P}.op", "invalid_operator"),
    (cond("tags", "eq", "x"), f"{P}.op", "invalid_operator"),
    (cond("custom.score", "contains", 1), f"{P}.op", "invalid_operator"),
    (cond("name", "eq"), f"{P}.value", "required"),
    (cond("name", "eq", 5), f"{P}.value", "wrong_type"),
    (cond("name", "eq", {"nested": "object"}), f"{P}.value", "wrong_type"),
    (cond("name", "eq", ["a"]), f"{P}.value", "wrong_type"),
    (cond("name", "eq", "  "), f"{P}.value", "blank"),
    (cond("name", "eq", "a\x00b"), f"{P}.value", "invalid"),
    (cond("name", "eq", "x" * 1001), f"{P}.value", "too_long"),
    (cond("name", "in", "a"), f"{P}.value", "wrong_type"),
    (cond("name", "in", []), f"{P}.value", "empty"),
    (cond("name", "in", ["a"] * 101), f"{P}.value", "too_many"),
    (cond("name", "in", ["a", 3]), f"{P}.value.1", "wrong_type"),
    (cond("name", "is_empty", "x"), f"{P}.value", "unexpected_value"),
    (cond("tags", "contains", "x" * 65), f"{P}.value", "invalid_tag"),
    (cond("tags", "contains_any", "vip"), f"{P}.value", "wrong_type"),
    (cond("custom.tier", "eq", "Platinum"), f"{P}.value", "invalid_choice"),
    (cond("custom.channels", "contains_all", ["Email", "Fax"]), f"{P}.value.1", "invalid_choice"),
    (cond("dnc", "eq", "true"), f"{P}.value", "wrong_type"),
    (cond("dnc", "eq", 1), f"{P}.value", "wrong_type"),
    (cond("custom.score", "eq", True), f"{P}.value", "wrong_type"),
    (cond("custom.score", "eq", "10"), f"{P}.value", "wrong_type"),
    (cond("custom.score", "gt", 1e300), f"{P}.value", "out_of_range"),
    (cond("custom.score", "gt", 10**400), f"{P}.value", "out_of_range"),
    (cond("custom.score", "between", [1]), f"{P}.value", "wrong_shape"),
    (cond("custom.score", "between", [1, 2, 3]), f"{P}.value", "wrong_shape"),
    (cond("custom.score", "between", {"lo": 1}), f"{P}.value", "wrong_type"),
    (cond("custom.score", "between", [1, "x"]), f"{P}.value.1", "wrong_type"),
    (cond("created_at", "eq", "yesterday"), f"{P}.value", "wrong_type"),
    (cond("created_at", "eq", "2024-02-30"), f"{P}.value", "invalid_date"),
    (cond("created_at", "eq", 20240101), f"{P}.value", "wrong_type"),
    (cond("created_at", "lte", "9999-12-31"), f"{P}.value", "out_of_range"),
    (cond("custom.renewal", "eq", "2024-13-01"), f"{P}.value", "invalid_date"),
    (cond("created_at", "within_last", 7), f"{P}.value", "wrong_type"),
    (cond("created_at", "within_last", {"amount": 0, "unit": "days"}), f"{P}.value.amount", "out_of_range"),
    (cond("created_at", "within_last", {"amount": True, "unit": "days"}), f"{P}.value.amount", "wrong_type"),
    (cond("created_at", "within_last", {"amount": 1.5, "unit": "days"}), f"{P}.value.amount", "wrong_type"),
    (cond("created_at", "within_last", {"amount": 1, "unit": "fortnights"}), f"{P}.value.unit", "invalid_choice"),
    (cond("created_at", "within_last", {"amount": 1, "unit": "days", "x": 1}), f"{P}.value", "unknown_key"),
    (cond("created_at", "more_than_ago", {"amount": 100000, "unit": "years"}), f"{P}.value", "out_of_range"),
    (cond("created_at", "within_next", {"amount": 0, "unit": "days"}), f"{P}.value.amount", "out_of_range"),
    (cond("custom.renewal", "within_next", {"amount": 1, "unit": "decades"}), f"{P}.value.unit", "invalid_choice"),
    (cond("custom.renewal", "more_than_ahead", "2024-01-01"), f"{P}.value", "wrong_type"),
    (cond("created_at", "more_than_ahead", {"amount": 100000, "unit": "years"}), f"{P}.value", "out_of_range"),
    (cond("custom.renewal", "within_next", {"amount": 100000, "unit": "years"}), f"{P}.value", "out_of_range"),
    (cond("created_at", "within_next"), f"{P}.value", "required"),
    (cond("created_at", "today", "2024-03-12"), f"{P}.value", "unexpected_value"),
    (cond("company", "today"), f"{P}.op", "invalid_operator"),
    (cond("view", "in", 1), f"{P}.value", "wrong_type"),
    (cond("view", "in", ["1"]), f"{P}.value.0", "wrong_type"),
    (cond("view", "in", [2**70]), f"{P}.value.0", "unknown_view"),
    (cond("view", "eq", 1), f"{P}.op", "invalid_operator"),
    (cond("assigned_to", "eq", "1"), f"{P}.value", "wrong_type"),
    (cond("assigned_to", "eq", True), f"{P}.value", "wrong_type"),
    (cond("assigned_to", "eq", -1), f"{P}.value", "out_of_range"),
    (cond("assigned_to", "in", [1, 2**70]), f"{P}.value.1", "out_of_range"),
    ({"field": "name", "op": "eq", "value": "x", "extra": 1}, f"{P}.extra", "unknown_key"),
    ({"op": "eq", "value": "x"}, f"{P}.field", "required"),
    ("name eq x", P, "wrong_type"),
]


@pytest.mark.parametrize(
    ("condition", "attr", "code"), INVALID, ids=[f"{a}-{c}-{i}" for i, (_, a, c) in enumerate(INVALID)]
)
def test_invalid_conditions_are_named_by_attr(compiler, condition, attr, code):
    assert (attr, code) in errors_of(compiler, one(condition))


def test_every_error_is_collected_with_its_path(compiler):
    body = {
        "query": {
            "groups": [
                {"conditions": [cond("name", "eq", "ok")]},
                {"conditions": [cond("nope", "eq", "x"), cond("custom.score", "gt", "ten")]},
            ]
        },
        "q": "x" * 201,
        "sort": [{"field": "tags"}, {"field": "nope", "direction": "up"}],
        "limit": 0,
        "offset": -1,
        "bogus": 1,
    }
    assert sorted(errors_of(compiler, body)) == sorted(
        [
            ("query.groups.1.conditions.0.field", "unknown_field"),
            ("query.groups.1.conditions.1.value", "wrong_type"),
            ("q", "too_long"),
            ("sort.0.field", "not_sortable"),
            ("sort.1.direction", "invalid_choice"),
            ("limit", "out_of_range"),
            ("offset", "out_of_range"),
            ("bogus", "unknown_key"),
        ]
    )


def test_caps_on_groups_and_conditions(compiler):
    group = {"conditions": [cond("name", "eq", "x")]}
    assert errors_of(compiler, {"query": {"groups": [group] * 21}}) == [("query.groups", "too_many")]
    compiler.compile_request({"query": {"groups": [group] * 20}})
    five = {"conditions": [cond("name", "eq", "x")] * 5}
    compiler.compile_request({"query": {"groups": [five] * 20}})  # exactly 100
    six = {"conditions": [cond("name", "eq", "x")] * 6}
    assert ("query.groups.16.conditions", "too_many") in errors_of(compiler, {"query": {"groups": [six] * 17}})
    assert errors_of(compiler, {"query": {"groups": [{"conditions": []}]}}) == [("query.groups.0.conditions", "empty")]


@pytest.mark.parametrize("body", [[], "x", 5, None, True])
def test_non_object_bodies_are_rejected(compiler, body):
    assert errors_of(compiler, body) == [(None, "wrong_type")]


def test_context_falls_back_to_utc_for_an_unknown_zone():
    class Org:
        timezone = "Mars/Olympus"
        default_region = "US"

    assert Context.for_org(Org()).tz.key == "UTC"


def test_a_group_is_driven_by_its_positive_tag_and_value_conditions_only():
    """Each driver holds every contact of its group: AND-ed, not negated, not inside an OR; with it
    comes the rest of the group, the conditions its contacts must also meet."""

    def sql(condition: Q) -> str:
        return str(Contact.objects.filter(condition).query)

    common, rare = tag_exists(tag_id=1), tag_exists(tag_id=2)
    ((side, rest),) = drivers_of(common & Q(dnc=False))
    assert str(side.query) == str(common.children[0].side.query)
    assert sql(rest) == sql(Q(dnc=False))
    both = drivers_of(common & (rare & Q(dnc=False)))
    assert [str(side.query) for side, _ in both] == [str(c.children[0].side.query) for c in (common, rare)]
    assert [sql(rest) for _, rest in both] == [sql(rare & Q(dnc=False)), sql(common & Q(dnc=False))]
    assert drivers_of(~common & Q(dnc=False)) == []
    assert drivers_of(common | rare) == []
    assert drivers_of(Q(dnc=False)) == []
