"""Merges (contacts.merge): what an undo needs, under forced row-level security."""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from crm.db_security import tenant_rls


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0013_duplicate_dismissals"),
        ("orgs", "0002_rls"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ContactMerge",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("into_id", models.BigIntegerField()),
                ("from_ids", django.contrib.postgres.fields.ArrayField(base_field=models.BigIntegerField(), size=None)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("before", models.JSONField(default=dict)),
                ("after", models.JSONField(default=dict)),
                ("opportunities", models.JSONField(default=dict)),
                ("undone_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
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
                "indexes": [models.Index(fields=["org", "into_id"], name="merge_org_into")],
            },
        ),
        tenant_rls("contacts_contactmerge"),
    ]
