"""The duplicate finder (contacts.duplicates): the match keys as SQL functions, their indexes, the
SECURITY DEFINER function that groups an org's contacts by them, and the dismissals table.

- `contacts_mailbox_key(email_key)`: the mailbox an address reaches at a provider that ignores
  dots and/or `+tags` (PROVIDERS below, the same table as contacts.duplicates.PROVIDERS); NULL
  for every other domain, whose folded address is its mailbox and is already unique per org.
- `contacts_person_key(folded)`: the folded, accent-free name and company (whitespace runs as one
  space), NULL unless both are non-empty. The accents dropped are the characters of Unicode
  combining class > 0, listed here from Python's `unicodedata`, as `customization.text.fold_unaccented`
  drops them.
- Partial B-tree indexes `(org_id, key) INCLUDE (<the key's column>)`, so each key's duplicates are
  found by a GROUP BY that reads the index alone, in key order (the column is included because
  PostgreSQL plans an index-only scan of an expression only when the expression's column is there).
- `contacts_duplicate_keys(assignee, max_size)`: every key shared by 2..max_size contacts of the
  org in `app.org_id` (and assigned to `assignee` when given), with its contacts' ids. It is
  SECURITY DEFINER and owned by the lookup role (as `crm_text_matches`, migration 0006): under the
  caller's row-level security the key functions, not LEAKPROOF, could not drive the indexes.
"""

import unicodedata

import django.db.models.deletion
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import migrations, models

from crm.db_security import ORG_MATCH, tenant_rls

APP, LOOKUP = settings.RLS_APP_ROLE, settings.RLS_LOOKUP_ROLE

# Frozen copy of contacts.duplicates.PROVIDERS as it was written (contacts/tests/test_duplicates_keys.py
# checks the two agree): domain -> (dots ignored, canonical domain). Every domain here ignores `+tags`.
PROVIDERS = {
    "gmail.com": (True, "gmail.com"),
    "googlemail.com": (True, "gmail.com"),
    "outlook.com": (False, "outlook.com"),
    "hotmail.com": (False, "hotmail.com"),
    "live.com": (False, "live.com"),
    "fastmail.com": (False, "fastmail.com"),
    "fastmail.fm": (False, "fastmail.fm"),
    "icloud.com": (False, "icloud.com"),
    "me.com": (False, "me.com"),
    "mac.com": (False, "mac.com"),
    "proton.me": (False, "proton.me"),
    "protonmail.com": (False, "protonmail.com"),
    "pm.me": (False, "pm.me"),
}


def _combining_class() -> str:
    """A regex bracket expression of every code point whose Unicode combining class is not 0."""
    ranges, start = [], None
    for cp in range(0x110000):
        combining = unicodedata.combining(chr(cp)) != 0
        if combining and start is None:
            start = cp
        elif not combining and start is not None:
            ranges.append((start, cp - 1))
            start = None

    def esc(cp: int) -> str:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"

    return "[" + "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges) + "]"


def _literals(values) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _mailbox_cases() -> str:
    domain = r"pg_catalog.substring(email_key, '@([^@]+)$')"
    local = r"pg_catalog.split_part(pg_catalog.substring(email_key, '^(.*)@[^@]+$'), '+', 1)"
    cases = []
    for dots, canonical in sorted({value for value in PROVIDERS.values()}):
        domains = sorted(d for d, value in PROVIDERS.items() if value == (dots, canonical))
        key = f"pg_catalog.replace({local}, '.', '')" if dots else local
        cases.append(f"WHEN {domain} IN ({_literals(domains)}) THEN NULLIF({key}, '') || '@{canonical}'")
    return "\n        ".join(cases)


KEYS_SQL = rf"""
CREATE FUNCTION contacts_mailbox_key(email_key text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE
        {_mailbox_cases()}
    END;

CREATE FUNCTION contacts_unaccent(folded text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN pg_catalog.normalize(
    pg_catalog.regexp_replace(pg_catalog.normalize(folded, 'NFD'), '{_combining_class()}', '', 'g'), 'NFC');

CREATE FUNCTION contacts_person_key(folded jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN CASE WHEN pg_catalog.btrim(folded ->> 'name') <> '' AND pg_catalog.btrim(folded ->> 'company') <> ''
    THEN public.contacts_unaccent(pg_catalog.regexp_replace(pg_catalog.btrim(folded ->> 'name'), '\s+', ' ', 'g'))
         || U&'\001F'
         || public.contacts_unaccent(pg_catalog.regexp_replace(pg_catalog.btrim(folded ->> 'company'), '\s+', ' ', 'g'))
    END;

CREATE INDEX contact_org_mailbox ON contacts_contact (org_id, contacts_mailbox_key(email_key), id) INCLUDE (email_key)
    WHERE contacts_mailbox_key(email_key) IS NOT NULL;
CREATE INDEX contact_org_person ON contacts_contact (org_id, contacts_person_key(folded), id) INCLUDE (folded)
    WHERE contacts_person_key(folded) IS NOT NULL;
"""

KEYS_REVERSE = """
DROP INDEX IF EXISTS contact_org_person;
DROP INDEX IF EXISTS contact_org_mailbox;
DROP FUNCTION IF EXISTS contacts_person_key(jsonb);
DROP FUNCTION IF EXISTS contacts_unaccent(text);
DROP FUNCTION IF EXISTS contacts_mailbox_key(text);
"""


def _by_index(reason: str, key: str, scope: str) -> str:
    """A key with its own index (org_id, key, id): one index-only pass in (key, id) order, each
    group's ids aggregated as it streams by."""
    return f"""
    SELECT '{reason}'::text, array_agg(id ORDER BY id)
    FROM public.contacts_contact
    WHERE {ORG_MATCH} AND {key} IS NOT NULL{scope.format(t="")}
    GROUP BY {key} HAVING count(*) BETWEEN 2 AND max_size"""


def _by_lookup(reason: str, key: str, scope: str) -> str:
    """The phone, whose index (org_id, phone) has no id: the shared phones from the index alone,
    then each one's contacts looked up (few: phones shared by 2..max_size contacts)."""
    return f"""
    SELECT '{reason}'::text, ARRAY(
        SELECT c.id FROM public.contacts_contact c
        WHERE c.{ORG_MATCH} AND c.{key} = shared.key{scope.format(t="c.")} ORDER BY c.id)
    FROM (SELECT {key} AS key FROM public.contacts_contact
          WHERE {ORG_MATCH} AND {key} IS NOT NULL{scope.format(t="")}
          GROUP BY {key} HAVING count(*) BETWEEN 2 AND max_size) shared"""


def _groups_function(name: str, arguments: str, scope: str) -> str:
    body = "\n    UNION ALL".join(
        (
            _by_index("email", "public.contacts_mailbox_key(email_key)", scope),
            _by_lookup("phone", "phone", scope),
            _by_index("name_company", "public.contacts_person_key(folded)", scope),
        )
    )
    signature = f"{name}({', '.join(argument.split()[1] for argument in arguments.split(', '))})"
    return f"""
CREATE FUNCTION {name}({arguments}) RETURNS TABLE (reason text, ids bigint[])
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, public AS $fn${body}
$fn$;
ALTER FUNCTION {signature} OWNER TO {LOOKUP};
REVOKE ALL ON FUNCTION {signature} FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {signature} TO {APP};
"""


# Two functions, not one with `assignee IS NULL OR …`: each is planned for its own scope.
GROUPS_SQL = (
    f"GRANT SELECT (id, org_id, email_key, phone, folded, assigned_to_id) ON contacts_contact TO {LOOKUP};"
    + _groups_function("contacts_duplicate_keys", "max_size integer", "")
    + _groups_function(
        "contacts_assigned_duplicate_keys", "assignee bigint, max_size integer", " AND {t}assigned_to_id = assignee"
    )
)

GROUPS_REVERSE = f"""
DROP FUNCTION IF EXISTS contacts_assigned_duplicate_keys(bigint, integer);
DROP FUNCTION IF EXISTS contacts_duplicate_keys(integer);
REVOKE SELECT (email_key, phone, folded, assigned_to_id) ON contacts_contact FROM {LOOKUP};
"""


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0012_trash"),
        ("orgs", "0002_rls"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunSQL(KEYS_SQL, reverse_sql=KEYS_REVERSE),
        migrations.RunSQL(GROUPS_SQL, reverse_sql=GROUPS_REVERSE),
        migrations.CreateModel(
            name="DuplicateDismissal",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("ids", ArrayField(base_field=models.BigIntegerField(), size=None)),
                ("at", models.DateTimeField(auto_now_add=True)),
                (
                    "org",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="orgs.organization",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("org", "ids"), name="dismissal_org_ids_uniq")],
            },
        ),
        tenant_rls("contacts_duplicatedismissal"),
    ]
