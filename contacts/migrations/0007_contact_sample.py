"""`contacts_sample`: a fixed 1% sample of the contacts table's pages, read under the caller's own
row-level security (security_invoker), for `count=estimate` from the org's own rows
(contacts.paging.estimate_count). SYSTEM sampling picks pages by their number and the seed, so
which of an org's rows are in it never depends on another org's data."""

from django.conf import settings
from django.db import migrations, models

SQL = f"""
CREATE VIEW contacts_sample WITH (security_invoker = true) AS
    SELECT id FROM contacts_contact TABLESAMPLE SYSTEM (1) REPEATABLE (0);
GRANT SELECT ON contacts_sample TO {settings.RLS_APP_ROLE};
"""


class Migration(migrations.Migration):
    dependencies = [("contacts", "0006_tags_values_folding")]

    operations = [
        migrations.CreateModel(
            name="ContactSample",
            fields=[("id", models.BigIntegerField(primary_key=True, serialize=False))],
            options={"db_table": "contacts_sample", "managed": False},
        ),
        migrations.RunSQL(SQL, reverse_sql="DROP VIEW IF EXISTS contacts_sample"),
    ]
