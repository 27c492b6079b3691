"""A contact's tag and custom-value rows, as the application stores them, in COPY text format.

Values are built by the application's own `contacts.services.stored_rows` (the field type's
`stored_items`, folded by customization.text), so seeded rows are the rows an API write or an
import would store. Formatting goes through psycopg (no database round trip); the seeder's hot
loop only joins ids to pre-formatted tails (one per profile value, one per pool value), since
formatting millions of rows one by one would make Python the bottleneck of seeding.
"""

from __future__ import annotations

import datetime as dt
import io

import psycopg
from psycopg.copy import FileWriter
from psycopg.types.json import Jsonb

from bench import data

# The columns after (org_id, contact_id, field_id, created_at): what a pre-formatted tail holds.
HEAD = 4
TAIL_COLUMNS = data.VALUE_COLUMNS[HEAD:]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # created_at of template rows, whose tails leave it out


def template_field(key: str, data_type: str, options: list[str], field_id: int = 0):
    """An unsaved CustomField standing for every org's field `key` (ids are joined in per org)."""
    from customization.models import CustomField

    return CustomField(pk=field_id, key=key, name=key, data_type=data_type, options=options)


def value_tuples(org_id: int, contact_id: int, field, canonical, created_at: dt.datetime) -> list[tuple]:
    """contacts_fieldvalue rows (data.VALUE_COLUMNS) of one canonical value, as stored_rows builds them."""
    from contacts.services import stored_rows

    return [
        tuple(Jsonb(row.value) if column == "value" else getattr(row, column) for column in data.VALUE_COLUMNS)
        for row in stored_rows(org_id, contact_id, field, canonical, created_at)
    ]


def copy_time(moment: dt.datetime) -> bytes:
    """A timestamptz in COPY text format, as psycopg writes it."""
    return moment.isoformat(sep=" ").encode()


def copy_lines(cursor, rows: list[tuple]) -> list[bytes]:
    """`rows` in COPY text format, one line each (with its newline), formatted by psycopg."""
    if not rows:
        return []
    buffer = io.BytesIO()
    with psycopg.Copy(cursor, writer=FileWriter(buffer)) as copy:
        for row in rows:
            copy.write_row(row)
    return [line + b"\n" for line in buffer.getvalue().split(b"\n")[:-1]]


def tails(cursor, fields: dict, values: list[tuple[str, object]]) -> list[tuple[str, bytes]]:
    """(key, COPY tail after the three ids) for each stored item of `values` [(key, canonical)]."""
    keyed = [(key, row) for key, canonical in values for row in value_tuples(0, 0, fields[key], canonical, EPOCH)]
    lines = copy_lines(cursor, [row[HEAD:] for _, row in keyed])
    return [(key, line) for (key, _), line in zip(keyed, lines, strict=True)]


def value_line(org_id: int, contact_id: int, field_id: int, created: bytes, tail: bytes) -> bytes:
    """`created`: the contact's created_at, copy_time()."""
    return b"%d\t%d\t%d\t%s\t%s" % (org_id, contact_id, field_id, created, tail)


def tag_line(org_id: int, contact_id: int, tag_id: int, created: bytes) -> bytes:
    return b"%d\t%d\t%d\t%s\n" % (org_id, contact_id, tag_id, created)


class ProfileValues:
    """The value rows of data.ContactFactory's profiles, formatted once: a contact's rows are its
    profile's tails behind its org's field ids, plus its external id."""

    def __init__(self, cursor, pool: list[tuple[dict, list[str]]]):
        self.fields = {key: template_field(key, kind, options) for key, _, kind, options in data.CUSTOM_FIELDS}
        self.by_profile = [tails(cursor, self.fields, list(custom.items())) for custom, _ in pool]
        self.text_type = self.fields["external_id"].field_type
        from customization.text import text_key

        self.text_key = text_key

    def lines(
        self, org_id: int, contact_id: int, field_ids: dict[str, int], profile: int, ext: str, created: bytes
    ) -> list[bytes]:
        (item,) = self.text_type.stored_items(ext)
        # External ids are `EXT-<digits>-<digits>` (data.external_id): nothing in them needs COPY or JSON escaping.
        external = b'%d\t%d\t%d\t%s\t0\t"%s"\t%s\t%s\t\\N\t\\N\t\\N\n' % (
            org_id, contact_id, field_ids["external_id"], created, item.value.encode(), item.text.encode(),
            self.text_key(item.text).encode(),
        )  # fmt: skip
        rest = [value_line(org_id, contact_id, field_ids[key], created, tail) for key, tail in self.by_profile[profile]]
        return [external, *rest]
