from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self):
        # Hooks customization reads contacts through (tag counts, template contexts).
        from contacts import hooks  # noqa: F401
        from contacts.importing import jobs, undo
        from jobs.kinds import JobKind, register

        kind = JobKind(
            run=jobs.run,
            undo=undo.undo,
            error_rows=jobs.error_rows,
            discard=jobs.discard_upload,
            expire=jobs.expire_journal,
        )
        register("import", kind)  # async imports (contacts.importing.jobs) run as jobs
