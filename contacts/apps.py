from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self):
        # Hooks customization reads contacts through (tag counts, template contexts).
        from contacts import bulk, hooks, journal, undo  # noqa: F401 (hooks: registered on import)
        from contacts.importing import jobs
        from jobs.kinds import JobKind, register
        from jobs.models import Job

        # Async imports (contacts.importing.jobs) and bulk actions (contacts.bulk) run as jobs.
        register(
            Job.Kind.IMPORT,
            JobKind(
                run=jobs.run,
                undo=undo.undo,
                error_rows=jobs.error_rows,
                discard=jobs.discard_upload,
                expire=journal.expire(Job.Kind.IMPORT),
            ),
        )
        register(
            Job.Kind.BULK,
            JobKind(
                run=bulk.run,
                undo=undo.undo,
                discard=bulk.discard_unchanged,
                expire=journal.expire(Job.Kind.BULK),
            ),
        )
