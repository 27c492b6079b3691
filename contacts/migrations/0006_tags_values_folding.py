"""Tenant isolation below the API (DESIGN §2): no schema object per org or field, nothing LEAKPROOF.

- A contact's tags become rows of `contacts_contacttag (org_id, contact_id, tag_id)` and its
  custom values rows of `contacts_fieldvalue (org_id, contact_id, field_id, position, value,
  <typed value>)`, with a fixed set of B-tree indexes that lead with org_id. Filters compare
  bigint, text, float, date and timestamptz with `=`, `<`, `>`: operators PostgreSQL ships as
  leakproof, so row-level security lets the planner use those indexes. Renaming a tag or
  deleting a tag or field is one catalog row; the foreign keys `(org_id, …) REFERENCES …
  (org_id, id) ON DELETE CASCADE` do the rest and keep every row inside its org.
- Case-insensitive matching compares values folded in Python (customization.text.fold):
  `email_key` (unique per org), `folded` (built-in text fields) and `search_text` (no accents).
- The per-org, per-field expression indexes and statistics objects of 0004/0005 and their
  functions are dropped.
- `q` reaches the trigram index through the function `crm_text_matches(patterns)`: the ids of
  the contacts of the org in the transaction's `app.org_id` setting whose haystack is LIKE one of
  the patterns. It is SECURITY DEFINER, owned by the role `crm_lookup`, which may read those
  columns of every org (its policy is `true`) and is granted to no login. Requests call it; they
  cannot name another org through it.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from crm.db_security import ORG_MATCH, bypassing_rls, tenant_rls
from customization.field_types import FIELD_TYPES
from customization.text import fold, fold_unaccented, text_key

APP, LOOKUP = settings.RLS_APP_ROLE, settings.RLS_LOOKUP_ROLE
BATCH = 2000
TEXT_FIELDS = ("first_name", "last_name", "name", "company", "source", "notes")

# The values' primary key also holds their typed columns, so checking one contact's value while
# walking the contacts (contacts/paging.py) reads the index only, never the value's row.
COVERING_KEY = """
ALTER TABLE contacts_fieldvalue DROP CONSTRAINT contacts_fieldvalue_pkey,
    ADD CONSTRAINT contacts_fieldvalue_pkey PRIMARY KEY (org_id, contact_id, field_id, position)
        INCLUDE (text_key, number, day, moment);
"""

FOREIGN_KEYS = """
ALTER TABLE contacts_contacttag
    ADD CONSTRAINT contacttag_contact_fk FOREIGN KEY (org_id, contact_id)
        REFERENCES contacts_contact (org_id, id) ON DELETE CASCADE,
    ADD CONSTRAINT contacttag_tag_fk FOREIGN KEY (org_id, tag_id)
        REFERENCES customization_tag (org_id, id) ON DELETE CASCADE;
ALTER TABLE contacts_fieldvalue
    ADD CONSTRAINT fieldvalue_contact_fk FOREIGN KEY (org_id, contact_id)
        REFERENCES contacts_contact (org_id, id) ON DELETE CASCADE,
    ADD CONSTRAINT fieldvalue_field_fk FOREIGN KEY (org_id, field_id)
        REFERENCES customization_customfield (org_id, id) ON DELETE CASCADE;
"""

DROP_PER_FIELD_OBJECTS = """
DO $$
DECLARE
    name text;
BEGIN
    FOR name IN SELECT indexname FROM pg_indexes
                WHERE tablename = 'contacts_contact' AND indexname LIKE 'contact\\_cf\\_%' LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I', name);
    END LOOP;
    FOR name IN SELECT stxname FROM pg_statistic_ext
                WHERE stxrelid = 'contacts_contact'::regclass AND stxname LIKE 'contact\\_cfstat\\_%' LOOP
        EXECUTE format('DROP STATISTICS IF EXISTS %I', name);
    END LOOP;
END
$$;
DROP FUNCTION IF EXISTS crm_custom_field_index(bigint, bigint, text, text);
DROP FUNCTION IF EXISTS crm_custom_text(jsonb, text);
DROP FUNCTION IF EXISTS crm_custom_number(jsonb, text);
DROP FUNCTION IF EXISTS crm_custom_date(jsonb, text);
DROP FUNCTION IF EXISTS crm_custom_datetime(jsonb, text);
"""

TEXT_LOOKUP = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{LOOKUP}') THEN
        CREATE ROLE {LOOKUP} NOLOGIN NOBYPASSRLS;
    END IF;
    -- The owner must be able to SET ROLE to it to hand it the function.
    EXECUTE format('GRANT {LOOKUP} TO %I', current_user);
END
$$;
GRANT USAGE, CREATE ON SCHEMA public TO {LOOKUP};
GRANT SELECT (id, org_id, search_text) ON contacts_contact TO {LOOKUP};
DROP POLICY IF EXISTS text_lookup ON contacts_contact;
CREATE POLICY text_lookup ON contacts_contact FOR SELECT TO {LOOKUP} USING (true);
-- Planned on its own, as its owner: a SECURITY DEFINER function is never inlined into the
-- caller's query, where row-level security would keep LIKE from using the index.
CREATE FUNCTION crm_text_matches(patterns text[]) RETURNS SETOF bigint
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, public ROWS 100 AS $fn$
    SELECT id FROM public.contacts_contact
    WHERE {ORG_MATCH} AND search_text LIKE ANY (patterns)
$fn$;
ALTER FUNCTION crm_text_matches(text[]) OWNER TO {LOOKUP};
REVOKE ALL ON FUNCTION crm_text_matches(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION crm_text_matches(text[]) TO {APP};
"""

DROP_TEXT_LOOKUP = """
DROP FUNCTION IF EXISTS crm_text_matches(text[]);
DROP POLICY IF EXISTS text_lookup ON contacts_contact;
"""


def backfill(apps, schema_editor):
    """Existing rows into the new shape (fresh databases have none)."""
    Contact = apps.get_model("contacts", "Contact")
    ContactTag = apps.get_model("contacts", "ContactTag")
    FieldValue = apps.get_model("contacts", "FieldValue")
    Tag = apps.get_model("customization", "Tag")
    CustomField = apps.get_model("customization", "CustomField")
    with bypassing_rls(schema_editor):
        fields = {(f.org_id, f.key): f for f in CustomField.objects.all()}
        tag_ids = {(t.org_id, t.name): t.id for t in Tag.objects.all()}
        last = 0
        while True:
            batch = list(Contact.objects.filter(pk__gt=last).order_by("pk")[:BATCH])
            if not batch:
                break
            last = batch[-1].pk
            links, values = [], []
            for contact in batch:
                contact.email_key = fold(contact.email) if contact.email else None
                contact.folded = {key: fold(getattr(contact, key)) for key in TEXT_FIELDS if getattr(contact, key)}
                digits = (contact.phone or "").lstrip("+")
                text = " ".join(p for p in (contact.name, contact.email or "", contact.company) if p)
                contact.search_text = fold_unaccented(text) + (f" {digits}" if digits else "")
                for name in dict.fromkeys(fold(" ".join(t.split())) for t in contact.tags or []):
                    if (contact.org_id, name) not in tag_ids:
                        tag_ids[(contact.org_id, name)] = Tag.objects.create(org_id=contact.org_id, name=name).id
                    links.append(ContactTag(org_id=contact.org_id, contact_id=contact.pk,
                                            tag_id=tag_ids[(contact.org_id, name)], created_at=contact.created_at))
                for key, canonical in (contact.custom or {}).items():
                    field = fields.get((contact.org_id, key))
                    if field is None or canonical in (None, "", []):
                        continue
                    for position, item in enumerate(FIELD_TYPES[field.data_type].stored_items(canonical)):
                        values.append(
                            FieldValue(
                                org_id=contact.org_id, contact_id=contact.pk, field_id=field.id, position=position,
                                value=item.value, folded=item.text,
                                text_key=text_key(item.text) if item.text is not None else None,
                                number=item.number, day=item.day, moment=item.moment, created_at=contact.created_at,
                            )
                        )  # fmt: skip
            Contact.objects.bulk_update(batch, ["email_key", "folded", "search_text"])
            ContactTag.objects.bulk_create(links, ignore_conflicts=True)
            FieldValue.objects.bulk_create(values)


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0005_custom_field_statistics"),
        ("customization", "0003_folded_names"),
        ("orgs", "0002_rls"),
        ("crm", "0007_pristine_catalog"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="contact",
            name="email_key",
            field=models.TextField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="contact",
            name="folded",
            field=models.JSONField(blank=True, default=dict, editable=False),
        ),
        migrations.AddConstraint(
            model_name="contact",
            constraint=models.UniqueConstraint(fields=("org", "id"), name="contact_org_id_uniq"),
        ),
        migrations.CreateModel(
            name="ContactTag",
            fields=[
                ("pk", models.CompositePrimaryKey("org_id", "contact_id", "tag_id", blank=True, editable=False,
                                                  primary_key=True, serialize=False)),
                ("org", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING,
                                          related_name="+", to="orgs.organization")),
                ("contact", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING,
                                              related_name="+", to="contacts.contact")),
                ("tag", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING,
                                          related_name="+", to="customization.tag")),
                ("created_at", models.DateTimeField()),
            ],
            options={"indexes": [models.Index(fields=["org", "tag", "-created_at", "-contact"], name="contacttag_by_tag")]},
        ),
        migrations.CreateModel(
            name="FieldValue",
            fields=[
                ("pk", models.CompositePrimaryKey("org_id", "contact_id", "field_id", "position", blank=True,
                                                  editable=False, primary_key=True, serialize=False)),
                ("org", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING,
                                          related_name="+", to="orgs.organization")),
                ("contact", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING,
                                              related_name="+", to="contacts.contact")),
                ("field", models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING,
                                            related_name="+", to="customization.customfield")),
                ("position", models.SmallIntegerField(default=0)),
                ("value", models.JSONField()),
                ("folded", models.TextField(db_collation="C", null=True)),
                ("text_key", models.TextField(db_collation="C", null=True)),
                ("number", models.FloatField(null=True)),
                ("day", models.DateField(null=True)),
                ("moment", models.DateTimeField(null=True)),
                ("created_at", models.DateTimeField()),
            ],
            options={
                "indexes": [
                    models.Index(condition=models.Q(**{f"{column}__isnull": False}),
                                 fields=["org", "field", column, "contact"], name=f"fieldvalue_{column}")
                    for column in ("text_key", "number", "day", "moment")
                ] + [
                    models.Index(fields=["org", "field", "-created_at", "-contact"],
                                 include=["text_key", "number", "day", "moment"], name="fieldvalue_created")
                ],
            },
        ),  # fmt: skip
        migrations.RunSQL(COVERING_KEY, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(FOREIGN_KEYS, reverse_sql=migrations.RunSQL.noop),
        tenant_rls("contacts_contacttag"),
        tenant_rls("contacts_fieldvalue"),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.RemoveConstraint(model_name="contact", name="contact_org_email_uniq"),
        migrations.AddConstraint(
            model_name="contact",
            constraint=models.UniqueConstraint(fields=("org", "email_key"), name="contact_org_email_uniq"),
        ),
        migrations.RemoveIndex(model_name="contact", name="contact_tags_gin"),
        migrations.RemoveIndex(model_name="contact", name="contact_custom_gin"),
        migrations.RemoveField(model_name="contact", name="custom"),
        migrations.RemoveField(model_name="contact", name="tags"),
        migrations.RunSQL(DROP_PER_FIELD_OBJECTS, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(TEXT_LOOKUP, reverse_sql=DROP_TEXT_LOOKUP),
    ]
