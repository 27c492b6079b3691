"""The bench database: `crm_bench` on the DATABASE_URL server, or on an embedded PostgreSQL in `.pgdata-bench/`.

Two logins, as an operator would have them (DESIGN §2, §5):
- the service's: a role that is not a superuser (`LOGIN CREATEDB CREATEROLE`, what a managed
  PostgreSQL gives), owner of crm_bench; it migrates the database and gunicorn serves as it;
- the loader's: the cluster's superuser (the embedded one, or DATABASE_URL's), for operator
  tooling only: creating the owner and the database, COPY into tables under forced row-level
  security (which refuses COPY to every role but a superuser), dropping and rebuilding indexes
  around the load, and timing SQL with and without row-level security.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = "crm_bench"
EMBEDDED_DIR = REPO / ".pgdata-bench"
SERVER_OWNER = "crm_bench_owner"  # the service's login on a DATABASE_URL server

# Every built-in function's definition and properties (LEAKPROOF, volatility, privileges…): the
# same fingerprint as crm/tests/test_managed_postgres.py's, compared with template1's.
CATALOG_FINGERPRINT = """
SELECT md5(string_agg(concat_ws('|', p.oid, p.proname, p.proleakproof, p.provolatile, p.proisstrict,
                                p.prosecdef, p.proconfig::text, p.proacl::text, p.prosrc), ',' ORDER BY p.oid))
FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace
"""


@dataclass
class BenchDatabase:
    url: str  # crm_bench as the loader (a superuser), usable by psycopg
    owner_url: str  # crm_bench as the service's owner role: DATABASE_URL of migrate and gunicorn
    owner: str  # that role's name
    admin_url: str  # the same server as the loader, a database to issue CREATE/DROP DATABASE from
    embedded: bool

    def connect(self, **kwargs) -> psycopg.Connection:
        # Never prepared (psycopg prepares a query run 5 times): the service sends its page SQL
        # unprepared, and a prepared plan would outlive the `SET LOCAL enable_indexscan` the
        # service runs it under (the walk tried first and the bitmap plan are the same text).
        kwargs.setdefault("prepare_threshold", None)
        conn = psycopg.connect(self.url, autocommit=True, **kwargs)
        conn.execute("SET TIME ZONE 'UTC'")
        return conn


def _with_db(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _with_login(url: str, user: str, password: str | None = None) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    login = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit((parts.scheme, f"{login}@{host}", parts.path, parts.query, parts.fragment))


def locate_server() -> BenchDatabase:
    base = os.environ.get("DATABASE_URL")
    if base:
        _require_superuser(base)
        password = _ensure_server_owner(base)
        owner_url = _with_login(_with_db(base, BENCH_DB), SERVER_OWNER, password)
        return BenchDatabase(_with_db(base, BENCH_DB), owner_url, SERVER_OWNER, base, embedded=False)
    from crm import embedded_db

    socket_dir = embedded_db.start(EMBEDDED_DIR)  # creates embedded_db.OWNER, not a superuser
    root = quote(socket_dir, safe="")
    return BenchDatabase(
        url=f"postgresql://postgres@{root}/{BENCH_DB}",
        owner_url=f"postgresql://{embedded_db.OWNER}@{root}/{BENCH_DB}",
        owner=embedded_db.OWNER,
        admin_url=f"postgresql://postgres@{root}/postgres",
        embedded=True,
    )


def _require_superuser(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if not row or not row[0]:
        raise SystemExit(
            "bench: DATABASE_URL must name a superuser (e.g. postgres://postgres@127.0.0.1:5432/postgres): the "
            f"loader creates the service's own non-superuser login ({SERVER_OWNER}) and COPYs the seed data."
        )


def _ensure_server_owner(superuser_url: str) -> str:
    """SERVER_OWNER (LOGIN CREATEDB CREATEROLE, not a superuser) with a fresh password; returns it."""
    password = secrets.token_urlsafe(18)
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        role = sql.Identifier(SERVER_OWNER)
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [SERVER_OWNER]).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE NOSUPERUSER").format(role))
        conn.execute(sql.SQL("ALTER ROLE {} LOGIN CREATEDB CREATEROLE NOSUPERUSER NOBYPASSRLS PASSWORD {}").format(
            role, sql.Literal(password)))  # fmt: skip
        # The app's roles are cluster-wide: if another install on this server (CI's login, say)
        # created them, PostgreSQL 16+ lets a CREATEROLE login grant them only with ADMIN OPTION.
        for name in _app_roles():
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name]).fetchone():
                conn.execute(sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier(name), role))
    return password


def _app_roles() -> list[str]:
    env = os.environ
    return [env.get("RLS_APP_ROLE", "crm_app"), env.get("RLS_BYPASS_ROLE", "crm_bypass"),
            env.get("RLS_LOOKUP_ROLE", "crm_lookup")]  # fmt: skip


def database_exists(db: BenchDatabase) -> bool:
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone() is not None


def recreate(db: BenchDatabase) -> None:
    """A fresh crm_bench owned by the service's role (created from template1, so its catalog is pristine)."""
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(BENCH_DB), sql.Identifier(db.owner)))


def migrate(db: BenchDatabase) -> None:
    """`manage.py migrate` as the owner role, as on a managed PostgreSQL."""
    env = {**os.environ, "DATABASE_URL": db.owner_url, "DEBUG": "0"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)


def setup_django(db: BenchDatabase) -> None:
    """Point this process's Django at crm_bench as the owner role (before anything imports settings)."""
    os.environ["DATABASE_URL"] = db.owner_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    os.environ["DEBUG"] = "0"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import django

    django.setup()


def read_meta(db: BenchDatabase, key: str = "seed") -> dict | None:
    with db.connect() as conn:
        exists = conn.execute("SELECT to_regclass('bench_meta') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("SELECT value FROM bench_meta WHERE key = %s", [key]).fetchone()
        return row[0] if row else None


def write_meta(db: BenchDatabase, meta: dict, key: str = "seed") -> None:
    from psycopg.types.json import Jsonb

    with db.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        conn.execute(
            "INSERT INTO bench_meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [key, Jsonb(meta)],
        )


def service_role_facts(db: BenchDatabase) -> dict:
    """Who the service is in PostgreSQL (read through its own login) and whether crm_bench's built-in
    catalog is still template1's."""
    with psycopg.connect(db.owner_url, autocommit=True) as conn:
        role, superuser, bypassrls, createdb, createrole, owns = conn.execute(
            "SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreatedb, r.rolcreaterole, "
            "d.datdba = r.oid FROM pg_roles r, pg_database d "
            "WHERE r.rolname = current_user AND d.datname = current_database()"
        ).fetchone()
        ours = conn.execute(CATALOG_FINGERPRINT).fetchone()[0]
    with psycopg.connect(_with_db(db.owner_url, "template1"), autocommit=True) as conn:
        pristine = conn.execute(CATALOG_FINGERPRINT).fetchone()[0]
    return {
        "role": role, "superuser": superuser, "bypassrls": bypassrls, "createdb": createdb,
        "createrole": createrole, "owns_database": owns, "catalog_fingerprint": ours,
        "template1_fingerprint": pristine, "catalog_matches_template1": ours == pristine,
    }  # fmt: skip


def server_facts(db: BenchDatabase) -> dict:
    with db.connect() as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = dict(
            conn.execute(
                "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'effective_cache_size', 'max_parallel_workers_per_gather', "
                "'jit', 'random_page_cost')"
            ).fetchall()
        )
        sizes = dict(
            conn.execute(
                "SELECT t, pg_size_pretty(pg_total_relation_size(t::regclass)) FROM unnest(ARRAY["
                "'contacts_contact', 'contacts_contacttag', 'contacts_fieldvalue']) AS t"
            ).fetchall()
        )
    return {"version": version, "settings": settings, "table_sizes": sizes,
            "contacts_table_size": sizes["contacts_contact"]}  # fmt: skip
