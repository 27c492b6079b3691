"""Fast checks of the bench data generator (no database): run with `pytest bench/tests`."""

from __future__ import annotations

import datetime as dt

from bench import data
from contacts.normalize import build_folded, build_search_text, email_key
from customization.field_types import FIELD_TYPES

TYPES = {key: (data_type, options) for key, _, data_type, options in data.CUSTOM_FIELDS}


def factory() -> data.ContactFactory:
    return data.ContactFactory(1, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), pool_size=64)


def test_custom_values_are_canonical():
    f = factory()
    for _ in range(500):
        for key, value in f.custom_values().items():
            data_type, options = TYPES[key]
            assert FIELD_TYPES[data_type].canonicalize(value, options=options) == value, (key, value)


def test_seed_rows_match_the_normalizer():
    f = factory()
    for index in range(300):
        row, profile, tags = f.seed_row(1000 + index, 7, index, None, f.start, f.start, data.OLD_TAG)
        row = dict(zip(data.COPY_COLUMNS, row, strict=True))
        assert row["id"] == 1000 + index and row["org_id"] == 7
        assert row["email_key"] == email_key(row["email"])
        assert row["folded"].obj == build_folded(row)
        assert row["search_text"] == build_search_text(row["name"], row["email"], row["phone"], row["company"])
        assert data.OLD_TAG in tags and tags == sorted(set(tags))
        assert 0 <= profile < f.pool_size


def test_api_contacts_carry_unique_emails_and_external_ids():
    f = factory()
    contacts = [f.api_contact(3, i, "x.") for i in range(1000)]
    emails = [c["email"] for c in contacts if c["email"]]
    assert len(set(emails)) == len(emails)
    assert len({c["custom"]["external_id"] for c in contacts}) == 1000
