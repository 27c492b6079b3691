"""The project's PostgreSQL backend (crm.db_postgresql), pointed at the embedded server, started on first connect.

Starting lazily keeps commands that never touch the database (ruff, `check`, schema
generation) from booting a server.
"""

from django.conf import settings

from crm import embedded_db
from crm.db_postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_connection_params(self):
        if not self.settings_dict.get("HOST"):
            self.settings_dict["HOST"] = embedded_db.start(
                settings.EMBEDDED_PGDATA, throwaway=settings.EMBEDDED_PG_THROWAWAY
            )
        return super().get_connection_params()
