"""Seeding the bench database: orgs, members and tokens through orgs.services, catalogs through
the ORM, and contacts with COPY (indexes dropped during the load and rebuilt after)."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import asdict, dataclass, field

import psycopg
from psycopg.copy import QueuedLibpqWriter

from bench import data
from bench.db import BenchDatabase
from crm.progress import ProgressBar

ASSIGNEES = 20
MAIN_ORG = "Bench main"
IMPORT_ORG = "Bench import"


@dataclass
class Actor:
    user_id: int
    token: str
    org_id: int


@dataclass
class Cast:
    main_org: int
    owner: Actor
    assigned: Actor  # the assigned-only member
    assignee_ids: list[int]
    other_orgs: list[int]
    import_org: int
    import_owner: Actor
    other_owner: Actor  # owner of the first other org (isolation sanity check)
    sample: dict = field(default_factory=dict)  # values the shapes filter on

    def to_json(self) -> dict:
        return asdict(self)


def _make_org(name: str, email: str):
    from orgs.models import Organization
    from orgs.services import create_org

    result = create_org(name, email)
    return Organization.objects.get(pk=result["org_id"]), Actor(result["user_id"], result["token"], result["org_id"])


def _catalogs(org_id: int, *, field_indexes: bool = False) -> None:
    """Tags and custom fields. `field_indexes`: create the fields one by one, as the API does, so
    they get their per-org expression indexes (contacts.receivers); the 50 small orgs skip them
    (400 more partial indexes would each cost a full-table build at seeding time)."""
    from crm.db_security import rls_bypass
    from customization.catalog import ensure_tags
    from customization.models import CustomField

    fields = [
        CustomField(org_id=org_id, key=key, name=name, data_type=data_type, options=options, position=pos)
        for pos, (key, name, data_type, options) in enumerate(data.CUSTOM_FIELDS)
    ]
    with rls_bypass():  # a cross-org bootstrap write, like orgs.services
        ensure_tags(org_id, data.ALL_TAGS)
        if field_indexes:
            for custom_field in fields:
                custom_field.save()
        else:
            CustomField.objects.bulk_create(fields)


def create_cast(other_orgs: int) -> Cast:
    from orgs.models import Membership
    from orgs.services import add_member

    main, owner = _make_org(MAIN_ORG, "owner@main.bench.test")
    assignee_ids, assigned = [], None
    for k in range(ASSIGNEES):
        scope = Membership.DataScope.ASSIGNED if k == ASSIGNEES - 1 else Membership.DataScope.ALL
        result = add_member(main, f"assignee{k:02d}@main.bench.test", Membership.Role.MEMBER, scope)
        assignee_ids.append(result["user_id"])
        if scope == Membership.DataScope.ASSIGNED:
            assigned = Actor(result["user_id"], result["token"], main.id)
    _catalogs(main.id, field_indexes=True)
    others, other_owner = [], None
    for k in range(other_orgs):
        org, actor = _make_org(f"Bench other {k:02d}", f"owner@other{k:02d}.bench.test")
        other_owner = other_owner or actor
        others.append(org.id)
        _catalogs(org.id)
    imp, import_owner = _make_org(IMPORT_ORG, "owner@import.bench.test")
    _catalogs(imp.id, field_indexes=True)
    return Cast(main.id, owner, assigned, assignee_ids, others, imp.id, import_owner, other_owner or owner)


def reissue_tokens(cast_json: dict) -> Cast:
    """A reused database keeps its users; give them fresh tokens (tokens are stored hashed)."""
    from django.contrib.auth import get_user_model

    from orgs.services import issue_token

    User = get_user_model()
    for key in ("owner", "assigned", "import_owner", "other_owner"):
        cast_json[key]["token"] = issue_token(User.objects.get(pk=cast_json[key]["user_id"]))
    cast = Cast(
        **{k: v for k, v in cast_json.items() if k not in ("owner", "assigned", "import_owner", "other_owner")},
        owner=Actor(**cast_json["owner"]),
        assigned=Actor(**cast_json["assigned"]),
        import_owner=Actor(**cast_json["import_owner"]),
        other_owner=Actor(**cast_json["other_owner"]),
    )
    return cast


def _secondary_indexes(conn) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = 'contacts_contact' AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = 'contacts_contact'::regclass)"
    ).fetchall()


def _rows(cast: Cast, contacts: int, other_contacts: int, seed: int):
    """COPY tuples: `contacts` in the main org and `other_contacts` spread over the other orgs,
    interleaved in time like real tenants (ids follow created_at)."""
    total = contacts + other_contacts
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    factory = data.ContactFactory(seed, now)
    rng = factory.rng
    span = (now - factory.start).total_seconds()
    others = cast.other_orgs or [cast.main_org]
    other_counts = dict.fromkeys(others, 0)
    main_left, other_left, main_index = contacts, other_contacts, 0
    for j in range(total):
        created = factory.start + dt.timedelta(seconds=span * (j + rng.random()) / total)
        updated = min(now, created + dt.timedelta(seconds=rng.random() * span * 0.2))
        if rng.random() * (main_left + other_left) < main_left:
            org, index = cast.main_org, main_index
            main_index += 1
            main_left -= 1
            assignee = rng.choice(cast.assignee_ids) if rng.random() < 0.9 else None
        else:
            org = others[j % len(others)]
            index = other_counts[org]
            other_counts[org] += 1
            other_left -= 1
            assignee = None
        old = data.OLD_TAG if org == cast.main_org and index < data.OLD_TAG_ROWS else None
        yield factory.seed_row(org, index, assignee, created, updated, old)


def seed_contacts(db: BenchDatabase, cast: Cast, contacts: int, other_contacts: int, seed: int = 7) -> dict:
    """COPY the contacts with the secondary indexes dropped, rebuild them, VACUUM ANALYZE. Returns timings."""
    total = contacts + other_contacts
    timings = {}
    with db.connect() as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("SET max_parallel_maintenance_workers = 2")
        # Skip per-row FK triggers during the load (superuser only; the data is consistent by construction).
        with contextlib.suppress(psycopg.Error):
            conn.execute("SET session_replication_role = replica")
        indexes = _secondary_indexes(conn)
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        started = time.monotonic()
        bar = ProgressBar(total, "COPY contacts")
        copy_sql = f"COPY contacts_contact ({', '.join(data.COPY_COLUMNS)}) FROM STDIN"
        with conn.cursor() as cur, cur.copy(copy_sql, writer=QueuedLibpqWriter(cur)) as copy:
            for j, row in enumerate(_rows(cast, contacts, other_contacts, seed)):
                copy.write_row(row)
                if j % 20000 == 19999:
                    bar.advance(20000)
        bar.advance(total - bar.done)
        timings["copy_s"] = time.monotonic() - started
        timings["copy_rows_per_s"] = total / timings["copy_s"]
        started = time.monotonic()
        for name, definition in indexes:
            t0 = time.monotonic()
            conn.execute(definition)
            timings[f"index {name} s"] = time.monotonic() - t0
            print(f"  index {name}: {time.monotonic() - t0:.1f} s", flush=True)
        timings["indexes_s"] = time.monotonic() - started
        conn.execute("SET session_replication_role = DEFAULT")
        started = time.monotonic()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.monotonic() - started
    return timings


def pick_samples(db: BenchDatabase, cast: Cast) -> dict:
    """Values the shapes filter on, read back from the data (so they hit what is there)."""
    with db.connect() as conn:
        count = conn.execute("SELECT count(*) FROM contacts_contact WHERE org_id = %s", [cast.main_org]).fetchone()[0]
        middle = conn.execute(
            "SELECT id, custom->>'external_id', email FROM contacts_contact WHERE org_id = %s AND email IS NOT NULL "
            "ORDER BY id OFFSET %s LIMIT 1",
            [cast.main_org, count // 2],
        ).fetchone()
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM contacts_contact TABLESAMPLE SYSTEM (1) WHERE org_id = %s LIMIT 500", [cast.main_org]
            )
        ]
    local = middle[2].split("@")[0]
    return {
        "main_contacts": count,
        "middle_id": middle[0],
        "external_id": middle[1],
        "q_selective": local,
        "contact_ids": ids or [middle[0]],
    }
