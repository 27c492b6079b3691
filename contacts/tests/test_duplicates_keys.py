"""The duplicate finder's match keys: the Python functions, and the SQL functions of migration 0013
giving the same answers (the SQL ones group and index; the Python ones document and test them)."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from contacts.duplicates import PROVIDERS, mailbox_key, merge, person_key, score
from contacts.normalize import build_folded

MIGRATION = importlib.import_module("contacts.migrations.0013_duplicate_dismissals")


@pytest.mark.parametrize(
    ("email", "key"),
    [
        ("Ada.Lovelace@gmail.com", "adalovelace@gmail.com"),
        ("ada.lovelace+crm@GMAIL.com", "adalovelace@gmail.com"),
        ("a.d.a+x+y@googlemail.com", "ada@gmail.com"),
        ("ada+news@outlook.com", "ada@outlook.com"),
        ("a.da+news@outlook.com", "a.da@outlook.com"),  # Outlook keeps dots
        ("ADA+x@Hotmail.com", "ada@hotmail.com"),
        ("ada+x@fastmail.com", "ada@fastmail.com"),
        ("ada+x@icloud.com", "ada@icloud.com"),
        ("ada+x@proton.me", "ada@proton.me"),
        ("ada+x@example.com", None),  # not a provider of the table: the address as it is
        ("ada@yahoo.com", None),
        ("+tag@gmail.com", None),  # no mailbox left
        ("...@gmail.com", None),
        ('"a@b"@gmail.com', '"a@b"@gmail.com'),  # the domain is after the last @
        ("ada@gmail.com.evil.test", None),
        ("", None),
        (None, None),
    ],
)
def test_mailbox_key(email, key):
    assert mailbox_key(email) == key


@pytest.mark.parametrize(
    ("name", "company", "key"),
    [
        ("José  Núñez", "Café Ltd", "jose nunez\x1fcafe ltd"),
        ("ADA LOVELACE", " Acme ", "ada lovelace\x1facme"),
        ("Straße", "Müller GmbH", "strasse\x1fmuller gmbh"),
        ("Ada", "", None),
        ("", "Acme", None),
        ("  ", "Acme", None),
    ],
)
def test_person_key(name, company, key):
    assert person_key(name, company) == key


def test_the_migration_holds_the_same_provider_table():
    assert MIGRATION.PROVIDERS == PROVIDERS


def _sql(function: str, value) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [value])
        return cursor.fetchone()[0]


EMAILS = [
    f"{local}@{domain}"
    for domain in [*PROVIDERS, "example.com", "GMAIL.COM"]
    for local in ("ada", "a.d.a", "ada+tag", "A.da+t.a+g", "+tag", "日本.語+x")
]


@pytest.mark.django_db
@pytest.mark.parametrize("email", EMAILS)
def test_sql_mailbox_key_agrees_with_python(email):
    from customization.text import fold

    assert _sql("contacts_mailbox_key", fold(email)) == mailbox_key(email)


PEOPLE = [
    ("José Núñez", "Café"), ("Ｍüller  Zoë", "ÅSA AB"), ("Straße", "Ωmega"), ("Nguyễn Văn A", "Việt"),
    ("ΣΊΣΥΦΟΣ", "Ὀδυσσεύς"), ("Ada", ""), ("", "Acme"), ("Ada\tLovelace", "Acme\u00a0Inc"),
]  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "company"), PEOPLE)
def test_sql_person_key_agrees_with_python(name, company):
    from psycopg.types.json import Jsonb

    folded = build_folded({"name": name, "company": company})
    with connection.cursor() as cursor:
        cursor.execute("SELECT contacts_person_key(%s)", [Jsonb(folded)])
        assert cursor.fetchone()[0] == person_key(name, company)


def test_merge_joins_key_groups_that_share_a_contact():
    merged = merge([("email", [1, 2]), ("phone", [2, 3]), ("name_company", [4, 5]), ("phone", [5, 6, 7])])
    by_ids = {tuple(g.ids): g for g in merged}
    assert set(by_ids) == {(1, 2, 3), (4, 5, 6, 7)}
    assert by_ids[(1, 2, 3)].reasons == ["email", "phone"]
    assert by_ids[(4, 5, 6, 7)].score == 60


def test_score_is_the_least_linked_members():
    assert score({1: {"email", "phone"}, 2: {"email", "phone"}}) == 97
    assert score({1: {"email"}, 2: {"email", "phone"}, 3: {"phone"}}) == 70
    assert score({1: {"email", "phone", "name_company"}, 2: {"email", "phone", "name_company"}}) == 99
