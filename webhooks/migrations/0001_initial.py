"""Webhooks and their deliveries (webhooks.models): tenant tables under forced row-level security,
granted to the app role (requests, a worker inside an org) and the bypass role (the dispatcher's
sweep across orgs, the admin); a delivery belongs to its webhook within the org (a foreign key on
(org_id, webhook_id), removed with it)."""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from crm.db_security import tenant_rls

APP, BYPASS = settings.RLS_APP_ROLE, settings.RLS_BYPASS_ROLE
TABLES = ["webhooks_webhook", "webhooks_delivery"]
CREATE = [
    *[f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {APP}, {BYPASS}" for table in TABLES],
    *[f"GRANT USAGE, SELECT ON SEQUENCE {table}_id_seq TO {APP}, {BYPASS}" for table in TABLES],
    "ALTER TABLE webhooks_delivery ADD CONSTRAINT delivery_webhook_fk FOREIGN KEY (org_id, webhook_id)"
    " REFERENCES webhooks_webhook (org_id, id) ON DELETE CASCADE",
]
DROP = ["ALTER TABLE webhooks_delivery DROP CONSTRAINT IF EXISTS delivery_webhook_fk"]


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contacts', '0014_merges'),
        ('orgs', '0002_rls'),
        ('changes', '0001_initial'),
        ('crm', '0007_pristine_catalog'),  # after crm 0005, which grants the app role every table again
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Webhook',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('url', models.CharField(max_length=2000)),
                ('events', django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=40), size=None)),
                ('active', models.BooleanField(default=True)),
                ('secret', models.CharField(max_length=100)),
                ('position_seq', models.BigIntegerField(default=0)),
                ('position_part', models.BigIntegerField(default=0)),
                ('position_id', models.BigIntegerField(default=0)),
                ('disabled_reason', models.TextField(blank=True, default='')),
                ('failing_since', models.DateTimeField(blank=True, null=True)),
                ('failures', models.IntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('queued_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('created_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('org', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='orgs.organization')),
                ('view', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='contacts.smartlistview')),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.CreateModel(
            name='Delivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('retrying', 'Retrying'), ('succeeded', 'Succeeded'), ('failed', 'Failed')], default='pending', max_length=10)),
                ('message_id', models.CharField(max_length=40)),
                ('first_seq', models.BigIntegerField()),
                ('first_part', models.BigIntegerField()),
                ('first_id', models.BigIntegerField()),
                ('last_seq', models.BigIntegerField()),
                ('last_part', models.BigIntegerField()),
                ('last_id', models.BigIntegerField()),
                ('entry_count', models.IntegerField()),
                ('body', models.TextField(blank=True, default='')),
                ('attempts', models.IntegerField(default=0)),
                ('response_code', models.IntegerField(blank=True, null=True)),
                ('latency_ms', models.IntegerField(blank=True, null=True)),
                ('error', models.TextField(blank=True, default='')),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('org', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='orgs.organization')),
                ('webhook', models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='webhooks.webhook')),
            ],
            options={
                'verbose_name_plural': 'deliveries',
            },
        ),
        migrations.AddConstraint(
            model_name='webhook',
            constraint=models.UniqueConstraint(fields=('org', 'id'), name='webhook_org_id_uniq'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['org', 'webhook', '-id'], name='delivery_org_webhook'),
        ),
        migrations.AddIndex(
            model_name='delivery',
            index=models.Index(fields=['created_at'], name='delivery_created'),
        ),
        *[tenant_rls(table) for table in TABLES],
        migrations.RunSQL(sql=CREATE, reverse_sql=DROP),
    ]
