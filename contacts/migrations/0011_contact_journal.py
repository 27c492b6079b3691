"""The import journal becomes every job's contact journal (imports and bulk actions): a new
model name over the same table, so nothing changes in the database."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("contacts", "0010_import_jobs_rls")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RenameModel("ImportJournal", "ContactJournal"),
                migrations.AlterModelTable("ContactJournal", "contacts_importjournal"),
            ],
            database_operations=[],
        )
    ]
