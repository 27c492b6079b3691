"""The async import's tables: forced row-level security, and (org_id, job_id) foreign keys to
the job (ON DELETE CASCADE), so a row can only point at a job of its own org."""

from django.db import migrations

from crm.db_security import tenant_rls

TABLES = ("contacts_importupload", "contacts_importissue", "contacts_importjournal")


def foreign_key(table: str) -> migrations.RunSQL:
    return migrations.RunSQL(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_job_fk FOREIGN KEY (org_id, job_id) "
        "REFERENCES jobs_job (org_id, id) ON DELETE CASCADE",
        reverse_sql=f"ALTER TABLE {table} DROP CONSTRAINT {table}_job_fk",
    )


class Migration(migrations.Migration):
    dependencies = [("contacts", "0009_import_jobs"), ("jobs", "0002_rls_and_queue_grants")]

    operations = [op for table in TABLES for op in (tenant_rls(table), foreign_key(table))]
