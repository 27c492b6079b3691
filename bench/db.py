"""The bench database: `crm_bench` on the DATABASE_URL server, or on an embedded PostgreSQL in `.pgdata-bench/`."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

REPO = Path(__file__).resolve().parent.parent
BENCH_DB = "crm_bench"
EMBEDDED_DIR = REPO / ".pgdata-bench"


@dataclass
class BenchDatabase:
    url: str  # postgres:// URL of crm_bench, usable by psycopg and DATABASE_URL alike
    admin_url: str  # the same server, a database to issue CREATE/DROP DATABASE from
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


def locate_server() -> BenchDatabase:
    base = os.environ.get("DATABASE_URL")
    if base:
        return BenchDatabase(url=_with_db(base, BENCH_DB), admin_url=base, embedded=False)
    from crm import embedded_db

    socket_dir = embedded_db.start(EMBEDDED_DIR)
    root = f"postgresql://postgres@{quote(socket_dir, safe='')}"
    return BenchDatabase(url=f"{root}/{BENCH_DB}", admin_url=f"{root}/postgres", embedded=True)


def database_exists(db: BenchDatabase) -> bool:
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [BENCH_DB]).fetchone() is not None


def recreate(db: BenchDatabase) -> None:
    with psycopg.connect(db.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")


def migrate(db: BenchDatabase) -> None:
    env = {**os.environ, "DATABASE_URL": db.url, "DEBUG": "0"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)


def setup_django(db: BenchDatabase) -> None:
    """Point this process's Django at crm_bench (before anything imports settings)."""
    os.environ["DATABASE_URL"] = db.url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    os.environ["DEBUG"] = "0"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import django

    django.setup()


def read_meta(db: BenchDatabase) -> dict | None:
    with db.connect() as conn:
        exists = conn.execute("SELECT to_regclass('bench_meta') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        row = conn.execute("SELECT value FROM bench_meta WHERE key = 'seed'").fetchone()
        return row[0] if row else None


def write_meta(db: BenchDatabase, meta: dict) -> None:
    from psycopg.types.json import Jsonb

    with db.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_meta (key text PRIMARY KEY, value jsonb NOT NULL)")
        conn.execute(
            "INSERT INTO bench_meta VALUES ('seed', %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            [Jsonb(meta)],
        )


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
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('contacts_contact'))").fetchone()[0]
    return {"version": version, "settings": settings, "contacts_table_size": size}
