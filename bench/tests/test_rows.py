"""Seeded tag and custom-value rows are the rows the application's own write path builds."""

import datetime as dt

import pytest
from django.db import connection

from bench import data, rows

pytestmark = pytest.mark.django_db

CREATED = dt.datetime(2025, 6, 1, 12, 30, 15, 250000, tzinfo=dt.UTC)
FIELD_IDS = {key: 100 + k for k, (key, *_) in enumerate(data.CUSTOM_FIELDS)}


def test_a_seeded_contacts_value_lines_are_stored_rows_formatted_by_psycopg():
    factory = data.ContactFactory(3, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), pool_size=64)
    connection.ensure_connection()
    with connection.connection.cursor() as cur:
        profiles = rows.ProfileValues(cur, factory.pool)
        fields = {
            key: rows.template_field(key, kind, options, FIELD_IDS[key]) for key, _, kind, options in data.CUSTOM_FIELDS
        }
        for profile, (custom, _) in enumerate(factory.pool):
            ext = data.external_id(7, profile)
            expected = [
                value
                for key, canonical in {"external_id": ext, **custom}.items()
                for value in rows.value_tuples(7, 5000 + profile, fields[key], canonical, CREATED)
            ]
            lines = profiles.lines(7, 5000 + profile, FIELD_IDS, profile, ext, rows.copy_time(CREATED))
            assert lines == rows.copy_lines(cur, expected)


def test_multi_select_values_are_one_row_per_option_in_order():
    field = rows.template_field("channels", "multi_select", data.CHANNELS, 9)
    stored = rows.value_tuples(1, 2, field, ["Email", "Phone"], CREATED)
    assert [(r[4], r[5].obj, r[6]) for r in stored] == [(0, "Email", "email"), (1, "Phone", "phone")]
