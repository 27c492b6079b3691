"""The trash: a contact moved out of the contacts table, kept whole (contacts.trash), under
forced row-level security like every tenant table."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from crm.db_security import tenant_rls


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0011_contact_journal"),
        ("orgs", "0002_rls"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="TrashedContact",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "org_id", "contact_id", blank=True, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("contact_id", models.BigIntegerField()),
                ("name", models.CharField(blank=True, default="", max_length=201)),
                ("email", models.CharField(blank=True, max_length=254, null=True)),
                ("assigned_to_id", models.BigIntegerField(null=True)),
                ("deleted_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("job_id", models.BigIntegerField(null=True)),
                ("merged_into", models.BigIntegerField(null=True)),
                ("merge_id", models.BigIntegerField(null=True)),
                ("snapshot", models.JSONField()),
                (
                    "deleted_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "org",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="orgs.organization",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["org", "-deleted_at", "-contact_id"], name="trash_org_deleted")],
            },
        ),
        tenant_rls("contacts_trashedcontact"),
    ]
