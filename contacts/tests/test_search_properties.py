"""Property-based tests of the compiler (hypothesis):

- any valid tree over the org's fields compiles and runs in PostgreSQL without error;
- any junk JSON is either a valid request or an InvalidInput (422), never another exception,
  and whatever compiles also runs.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contacts.models import Contact
from contacts.search import FieldRegistry, SearchCompiler
from contacts.search.operators import OP_SHAPES
from contacts.testing import make_contact
from crm.db_security import as_org
from crm.errors import InvalidInput
from crm.limits import SPAN_UNITS
from customization.models import CustomField
from orgs.tests.factories import OrganizationFactory

FIELDS = [
    ("segment", "text", []),
    ("score", "number", []),
    ("renewal", "date", []),
    ("seen", "datetime", []),
    ("flag", "boolean", []),
    ("tier", "single_select", ["Gold", "Silver"]),
    ("channels", "multi_select", ["Email", "SMS"]),
    ("mail", "email", []),
    ("tel", "phone", []),
    ("site", "url", []),
    ("bio", "textarea", []),
]
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        org = OrganizationFactory(name="Property org", timezone="Asia/Kolkata")
        definitions = [CustomField.objects.create(org=org, key=k, name=k, data_type=t, options=o) for k, t, o in FIELDS]
        make_contact(
            org=org,
            name="Full",
            company="Acme",
            email="a@b.test",
            tags=["vip"],
            custom={
                "segment": "x",
                "score": 1.5,
                "renewal": "2024-01-02",
                "seen": "2024-01-02T03:04:05.000000Z",
                "flag": True,
                "tier": "Gold",
                "channels": ["SMS"],
                "mail": "m@x.test",
                "tel": "+14155552671",
                "site": "https://x.test",
                "bio": "hello",
            },
        )
        make_contact(org=org, name="Empty")
        yield {"org": org, "registry": FieldRegistry.from_definitions(definitions)}
        transaction.set_rollback(True)


@pytest.fixture
def compiler(world, db):
    return SearchCompiler.for_org(world["org"])


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=20).filter(
    lambda s: s.strip()
)
dates = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2999, 12, 31)).map(dt.date.isoformat)
datetimes = st.datetimes(
    min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2999, 12, 30), timezones=st.just(dt.UTC)
).map(lambda d: d.isoformat().replace("+00:00", "Z"))
numbers = st.integers(-(10**12), 10**12) | st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
spans = st.fixed_dictionaries({"amount": st.integers(1, 500), "unit": st.sampled_from(SPAN_UNITS)})


def scalars_for(field):
    if field.options is not None:
        return st.sampled_from(field.options).map(lambda o: o.upper())
    return {
        "text": texts,
        "tags": texts.map(lambda s: s[:60]),
        "boolean": st.booleans(),
        "number": numbers,
        "date": dates | datetimes,
        "datetime": dates | datetimes,
        "user": st.integers(1, 2**62),
    }[field.kind]


@st.composite
def conditions(draw, registry):
    field = draw(st.sampled_from(registry.all()))
    op = draw(st.sampled_from(field.operators))
    shape = OP_SHAPES.get(op, "scalar")
    condition = {"field": field.name, "op": op}
    scalar = scalars_for(field)
    if (
        field.kind == "text"
        and field.options is not None
        and op in ("contains", "not_contains", "starts_with", "ends_with")
    ):
        scalar = texts
    if shape == "scalar":
        condition["value"] = draw(scalar)
    elif shape == "list":
        condition["value"] = draw(st.lists(scalar, min_size=1, max_size=4))
    elif shape == "range":
        condition["value"] = draw(st.lists(scalar, min_size=2, max_size=2))
    elif shape == "span":
        condition["value"] = draw(spans)
    return condition


@st.composite
def bodies(draw, registry):
    groups = draw(st.lists(st.lists(conditions(registry), min_size=1, max_size=4), max_size=4))
    sortable = [f.name for f in registry.all() if f.sortable]
    sort = draw(
        st.lists(
            st.fixed_dictionaries({"field": st.sampled_from(sortable), "direction": st.sampled_from(["asc", "desc"])}),
            max_size=2,
        )
    )
    return {
        "query": {"groups": [{"conditions": g} for g in groups]},
        "sort": sort,
        "q": draw(st.sampled_from(["", "acme", "415"])),
    }


def run(compiler, world, plan):
    with as_org(world["org"].id):  # as a request runs it
        queryset = plan.sort.apply(plan.filter(Contact.objects.for_org(world["org"].id)))
        return [c.id for c in queryset[:10]], plan.filter(Contact.objects.for_org(world["org"].id)).count()


def test_random_valid_trees_compile_and_run(compiler, world):
    @SETTINGS
    @given(body=bodies(world["registry"]))
    def check(body):
        run(compiler, world, compiler.compile_request(body))

    check()


json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
junk = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def near_valid(registry):
    """Valid-looking bodies with one part replaced by junk: exercises deep validation paths."""
    field_names = st.sampled_from([f.name for f in registry.all()] + ["custom.nope", "custom.", "nope"])
    ops = st.sampled_from(sorted({op for f in registry.all() for op in f.operators}) + ["bad"])
    condition = st.fixed_dictionaries({"field": field_names | junk, "op": ops | junk}, optional={"value": junk})
    group = st.fixed_dictionaries({"conditions": st.lists(condition, max_size=3) | junk})
    return st.fixed_dictionaries(
        {},
        optional={
            "query": st.fixed_dictionaries({"groups": st.lists(group, max_size=3) | junk}) | junk,
            "q": st.text(max_size=5) | junk,
            "sort": junk,
            "limit": junk,
            "offset": junk,
            "count": junk,
        },
    )


def test_junk_is_invalid_input_or_runs(compiler, world):
    @SETTINGS
    @given(body=junk | near_valid(world["registry"]))
    def check(body):
        try:
            plan = compiler.compile_request(body)
        except InvalidInput as exc:
            assert exc.field_errors
            for error in exc.field_errors:
                assert error.attr is None or isinstance(error.attr, str)
                error.attr and error.attr.encode("utf-8")  # renderable
            return
        run(compiler, world, plan)

    check()
