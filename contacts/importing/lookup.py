"""What a chunk's plan needs from the database, read on the writer thread (`engine`): the
contacts holding the rows' emails/phones, read `FOR UPDATE` with their tags and custom values,
and ids for the chunk's new contacts from the table's own sequence."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from contacts.importing.columns import COLUMNS, ORG_PARAM
from contacts.importing.options import ImportOptions
from contacts.models import MULTI_SELECT, Contact, ContactTag, FieldValue
from customization.models import CustomField, Tag
from customization.text import fold


@dataclass
class Existing:
    """A contact already in the database that some row matched (read FOR UPDATE)."""

    id: int
    first_name: str
    last_name: str
    name: str
    email: str | None
    phone: str | None
    company: str
    source: str
    notes: str
    dnc: bool
    assigned_to_id: int | None
    folded: dict
    search_text: str
    email_key: str | None = None
    created_at: dt.datetime | None = None
    # Read to tell a row that changes nothing (`plan.Planner`), and for the cap on tags.
    tags: list[str] = field(default_factory=list)
    custom: dict = field(default_factory=dict)  # canonical values by field key


class Lookup:
    """One run's reads of an org's contacts (the sequence's name is looked up once per run)."""

    def __init__(self, org_id: int, options: ImportOptions):
        self.org_id = org_id
        self.options = options
        self._id_sequence: str | None = None  # the contacts id sequence, looked up once

    def existing(self, cursor, candidates, known_emails) -> list[Existing]:
        """The contacts holding the emails (not yet in the run's maps: `known_emails`) and the
        phones of these rows. Every holder of a phone is read, known or not: a phone finds the
        oldest contact that holds it now, which may be one the maps no longer have."""
        emails = sorted({fold(g["email"]) for _, g, _ in candidates if g.get("email")} - known_emails)
        phones = []
        if self.options.dedupe_phone:
            phones = sorted({g["phone"] for _, g, _ in candidates if g.get("phone")})
        arms = [("email_key = ANY(%s::text[])", emails), ("phone = ANY(%s::text[])", phones)]
        arms = [(sql, keys) for sql, keys in arms if keys]
        if not arms:
            return []
        where = "(" + " OR ".join(sql for sql, _ in arms) + ")"
        return self.read_contacts(cursor, where, [keys for _, keys in arms], lock=True)

    def reserve_ids(self, cursor, count: int) -> list[int]:
        """Ids for a chunk's new contacts from the table's own sequence (one per row, since at
        most that many are new; unused ones are gaps, as after any rollback), last first for
        pop(). So a chunk is staged as soon as it is planned, and a later chunk can update a
        new contact by id while this one is written."""
        if not count:
            return []
        if self._id_sequence is None:
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Contact._meta.db_table])
            (self._id_sequence,) = cursor.fetchone()
        # The name as a constant regclass: resolved once, not per row (6x cheaper).
        cursor.execute(
            "SELECT nextval(%s::regclass) FROM generate_series(1, %s)",
            [self._id_sequence, count],
        )
        return [contact_id for (contact_id,) in reversed(cursor.fetchall())]

    def _lookup_sql(self, where: str, lock: bool) -> str:
        """The org's contacts matching `where`, in id order; its parameters: the org id, then `where`'s."""
        return (
            f"SELECT id, created_at, {', '.join(COLUMNS)} FROM {Contact._meta.db_table} "
            f"WHERE org_id = {ORG_PARAM} AND {where} ORDER BY id"
            + (" FOR UPDATE" if lock and not self.options.dry_run else "")
        )

    def read_contacts(self, cursor, where: str, params: list, lock: bool) -> list[Existing]:
        cursor.execute(self._lookup_sql(where, lock), [self.org_id, *params])
        names = ["id", "created_at", *COLUMNS]
        found = [Existing(**dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
        for contact in found:  # Django's psycopg setup leaves jsonb undecoded
            if isinstance(contact.folded, str):
                contact.folded = json.loads(contact.folded)
        if found:
            by_id = {contact.id: contact for contact in found}
            # Each contact's tags and custom values by its key (subqueries per contact, which the
            # planner cannot turn into joins): as a join, a tag the statistics do not know yet (one
            # the import adds to every row) was read whole for each chunk, its every row checked
            # against the chunk's ids (1.1 s a chunk of 2,500 on 100,000 contacts).
            cursor.execute(
                f"SELECT c.id, ARRAY(SELECT t.name FROM {ContactTag._meta.db_table} ct "
                f"JOIN {Tag._meta.db_table} t ON t.org_id = ct.org_id AND t.id = ct.tag_id "
                f"WHERE ct.org_id = {ORG_PARAM} AND ct.contact_id = c.id ORDER BY t.name), "
                f"(SELECT json_object_agg(f.key, CASE WHEN f.data_type = '{MULTI_SELECT}' THEN v.items "
                "ELSE v.items -> 0 END) FROM (SELECT field_id, jsonb_agg(value ORDER BY position) AS items "
                f"FROM {FieldValue._meta.db_table} WHERE org_id = {ORG_PARAM} AND contact_id = c.id "
                f"GROUP BY field_id) v JOIN {CustomField._meta.db_table} f ON f.org_id = {ORG_PARAM} "
                "AND f.id = v.field_id)::text "
                "FROM unnest(%s::bigint[]) AS c(id)",
                [self.org_id, self.org_id, self.org_id, list(by_id)],
            )
            for contact_id, names, custom in cursor.fetchall():
                by_id[contact_id].tags.extend(names)
                by_id[contact_id].custom = json.loads(custom) if custom else {}
        return found
