"""Seeding the bench database: orgs, members and tokens through orgs.services, catalogs through
the ORM, and contacts with their tags and custom values with COPY (secondary indexes of the
three tables dropped during the load and rebuilt after)."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import asdict, dataclass, field

from psycopg.copy import QueuedLibpqWriter

from bench import data, rows
from bench.db import BenchDatabase
from crm.progress import ProgressBar

ASSIGNEES = 20
MAIN_ORG = "Bench main"
IMPORT_ORG = "Bench import"
CREATED_AT = data.COPY_COLUMNS.index("created_at")


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


def _catalogs(org_id: int) -> None:
    """Tags and custom fields through the ORM, as rows (no schema object per org or field)."""
    from crm.db_security import rls_bypass
    from customization.catalog import ensure_tags, normalize_tag
    from customization.models import CustomField

    fields = [
        CustomField(org_id=org_id, key=key, name=name, data_type=data_type, options=options, position=pos)
        for pos, (key, name, data_type, options) in enumerate(data.CUSTOM_FIELDS)
    ]
    with rls_bypass():  # a cross-org bootstrap write, like orgs.services
        ensure_tags(org_id, [normalize_tag(name) for name in data.ALL_TAGS])
        CustomField.objects.bulk_create(fields)


def make_catalog_org(name: str, email: str) -> Actor:
    """An org with its owner (and a token), the bench's tags and custom fields, no contacts."""
    org, actor = _make_org(name, email)
    _catalogs(org.id)
    return actor


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
    _catalogs(main.id)
    others, other_owner = [], None
    for k in range(other_orgs):
        org, actor = _make_org(f"Bench other {k:02d}", f"owner@other{k:02d}.bench.test")
        other_owner = other_owner or actor
        others.append(org.id)
        _catalogs(org.id)
    imp, import_owner = _make_org(IMPORT_ORG, "owner@import.bench.test")
    _catalogs(imp.id)
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


SEEDED_TABLES = ("contacts_contact", "contacts_contacttag", "contacts_fieldvalue")


def _secondary_indexes(conn, tables=SEEDED_TABLES) -> list[tuple[str, str]]:
    """Indexes of `tables` that no constraint owns (primary keys and unique constraints stay)."""
    return conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = ANY(%s) AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = ANY(%s::regclass[]))",
        [list(tables), list(tables)],
    ).fetchall()


def catalog_ids(conn, org_ids: list[int] | None = None) -> tuple[dict, dict]:
    """({org: {tag name: id}}, {org: {field key: id}}) as stored, for the rows that refer to them."""
    where, params = ("WHERE org_id = ANY(%s)", [org_ids]) if org_ids is not None else ("", [])
    tags: dict[int, dict[str, int]] = {}
    for org, name, tag_id in conn.execute(f"SELECT org_id, name, id FROM customization_tag {where}", params):
        tags.setdefault(org, {})[name] = tag_id
    fields: dict[int, dict[str, int]] = {}
    for org, key, field_id in conn.execute(f"SELECT org_id, key, id FROM customization_customfield {where}", params):
        fields.setdefault(org, {})[key] = field_id
    return tags, fields


def reserve_ids(conn, table: str, count: int) -> int:
    """The first of `count` consecutive ids taken from `table`'s sequence (nothing else writes while seeding)."""
    first = conn.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', 'id'))").fetchone()[0]
    if count > 1:
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), %s)", [first + count - 1])
    return first


def _rows(cast: Cast, contacts: int, other_contacts: int, seed: int, first_id: int, factory=None):
    """(contact COPY row, profile, tags, org, index): `contacts` in the main org and `other_contacts`
    spread over the other orgs, interleaved in time like real tenants (ids follow created_at)."""
    total = contacts + other_contacts
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    factory = factory or data.ContactFactory(seed, now)
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
        row, profile, tags = factory.seed_row(first_id + j, org, index, assignee, created, updated, old)
        yield row, profile, tags, org, index


@contextlib.contextmanager
def loading(db: BenchDatabase, count: int):
    """`count` loader connections (superuser: COPY under forced row-level security is refused to
    every other role) with per-row foreign-key triggers off: the data is consistent by construction."""
    with contextlib.ExitStack() as stack:
        conns = [stack.enter_context(db.connect()) for _ in range(count)]
        for conn in conns:
            conn.execute("SET session_replication_role = replica")
        yield conns


def drop_indexes(conn, tables=SEEDED_TABLES) -> list[tuple[str, str]]:
    """Drop the secondary indexes of `tables`, and the primary keys of the tag and value tables
    (no foreign key refers to them; a B-tree built once after the load is cheaper than one kept
    up row by row, and these two take eight rows per contact). Returns (name, statement that rebuilds it)."""
    keys = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'p' AND conrelid = ANY(%s::regclass[])",
        [[t for t in tables if t in ("contacts_contacttag", "contacts_fieldvalue")]],
    ).fetchall()
    for table, name, _ in keys:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    indexes = _secondary_indexes(conn, tables)
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    rebuild_keys = [
        (name, f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}') for table, name, definition in keys
    ]
    return rebuild_keys + indexes


def build_indexes(conn, indexes: list[tuple[str, str]], timings: dict) -> None:
    started = time.monotonic()
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute("SET max_parallel_maintenance_workers = 2")
    for name, definition in indexes:
        t0 = time.monotonic()
        conn.execute(definition)
        timings[f"index {name} s"] = time.monotonic() - t0
        print(f"  index {name}: {time.monotonic() - t0:.1f} s", flush=True)
    timings["indexes_s"] = time.monotonic() - started


def seed_contacts(db: BenchDatabase, cast: Cast, contacts: int, other_contacts: int, seed: int = 7) -> dict:
    """COPY the contacts, their tags and their custom values (three COPYs side by side, one
    connection each) with the secondary indexes dropped, rebuild them, VACUUM ANALYZE. Returns timings."""
    total = contacts + other_contacts
    timings: dict = {}
    with loading(db, 3) as (conn, tag_conn, value_conn):
        indexes = drop_indexes(conn)
        tag_ids, field_ids = catalog_ids(conn)
        first_id = reserve_ids(conn, "contacts_contact", total)
        factory = data.ContactFactory(seed, dt.datetime.now(dt.UTC))
        with conn.cursor() as cur:
            profiles = rows.ProfileValues(cur, factory.pool)
        started = time.monotonic()
        bar = ProgressBar(total, "COPY contacts, tags, values")
        tag_rows = value_rows = 0
        with contextlib.ExitStack() as stack:
            copy = copy_into(stack, conn, "contacts_contact", data.COPY_COLUMNS)
            tag_copy = copy_into(stack, tag_conn, "contacts_contacttag", data.TAG_COLUMNS)
            value_copy = copy_into(stack, value_conn, "contacts_fieldvalue", data.VALUE_COLUMNS)
            for j, (row, profile, tags, org, index) in enumerate(_rows(cast, contacts, other_contacts, seed,
                                                                       first_id, factory)):  # fmt: skip
                copy.write_row(row)
                org_tags = tag_ids[org]
                created = rows.copy_time(row[CREATED_AT])
                tag_copy.write(b"".join(rows.tag_line(org, row[0], org_tags[name], created) for name in tags))
                lines = profiles.lines(org, row[0], field_ids[org], profile, data.external_id(org, index), created)
                value_copy.write(b"".join(lines))
                tag_rows += len(tags)
                value_rows += len(lines)
                if j % 20000 == 19999:
                    bar.advance(20000)
        bar.advance(total - bar.done)
        timings["copy_s"] = time.monotonic() - started
        timings["copy_rows_per_s"] = total / timings["copy_s"]
        timings.update({"contacts": total, "tag_rows": tag_rows, "value_rows": value_rows})
        build_indexes(conn, indexes, timings)
        conn.execute("SET session_replication_role = DEFAULT")
        started = time.monotonic()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum_analyze_s"] = time.monotonic() - started
    return timings


def copy_into(stack: contextlib.ExitStack, conn, table: str, columns: tuple[str, ...]):
    """A COPY FROM STDIN into `table` whose writes are sent by a background thread."""
    cur = stack.enter_context(conn.cursor())
    return stack.enter_context(cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN",
                                        writer=QueuedLibpqWriter(cur)))  # fmt: skip


def lookup_ids(db: BenchDatabase, org_id: int) -> dict:
    """The org's catalog ids, read at run time (the plain-SQL count references filter on them)."""
    with db.connect() as conn:
        tags, fields = catalog_ids(conn, [org_id])
    return {"tag_ids": tags.get(org_id, {}), "field_ids": fields.get(org_id, {})}


def pick_samples(db: BenchDatabase, cast: Cast) -> dict:
    """Values the shapes filter on, read back from the data (so they hit what is there)."""
    with db.connect() as conn:
        count = conn.execute("SELECT count(*) FROM contacts_contact WHERE org_id = %s", [cast.main_org]).fetchone()[0]
        middle = conn.execute(
            "SELECT id, email FROM contacts_contact WHERE org_id = %s AND email IS NOT NULL "
            "ORDER BY id OFFSET %s LIMIT 1",
            [cast.main_org, count // 2],
        ).fetchone()
        external = conn.execute(
            "SELECT v.value #>> '{}' FROM contacts_fieldvalue v JOIN customization_customfield f "
            "ON f.org_id = v.org_id AND f.id = v.field_id WHERE v.org_id = %s AND v.contact_id = %s "
            "AND f.key = 'external_id'",
            [cast.main_org, middle[0]],
        ).fetchone()
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM contacts_contact TABLESAMPLE SYSTEM (1) WHERE org_id = %s LIMIT 500", [cast.main_org]
            )
        ]
    local = middle[1].split("@")[0]
    return {
        "main_contacts": count,
        "middle_id": middle[0],
        "external_id": external[0],
        "q_selective": local,
        "contact_ids": ids or [middle[0]],
    }
