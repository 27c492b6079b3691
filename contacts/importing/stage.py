"""A chunk's plan as COPY data: its new contacts and updates apart, then the tags and custom
values the rows gave.

Formatted in Python on the request thread (psycopg's own formatting, without a database round
trip), so the writer thread (`write`) only sends bytes and seldom needs the GIL.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import psycopg
from django.db import connection
from django.utils import timezone
from psycopg.copy import FileWriter
from psycopg.types.json import Jsonb

from contacts.importing.columns import COLUMNS, TAG_TYPES, VALUE_COLUMNS, VALUE_TYPES, WRITE_TYPES
from contacts.importing.plan import Planner, Target
from contacts.models import FieldValue
from contacts.services import stored_rows
from customization.catalog import ensure_tags


@dataclass
class Staged:
    """A chunk ready for the writer: COPY data of its new contacts, its updates, its tags (added)
    and its custom values (of new contacts, and replacing those of updated ones)."""

    targets: list[Target]
    new: dict[int, Target]  # by planned id
    creating: bytes
    updating: bytes
    updates: int
    tags: bytes = b""
    new_values: bytes = b""
    updated_values: bytes = b""


class Stager:
    """One run's staging: which new contacts are already staged for insert, and the catalog ids of
    the tag names seen so far."""

    def __init__(self, planner: Planner, org_id: int):
        self.planner = planner
        self.org_id = org_id
        self.inserted_ids: set[int] = set()  # new contacts staged for insert (later rows update them)
        self.tag_ids: dict[str, int] = {}  # catalog ids of the tag names seen so far

    def ensure_tags(self, candidates) -> None:
        """The rows' tag names join the catalog (new names only: one INSERT, seldom needed)."""
        names = {tag for _, given, _ in candidates for tag in given.get("tags", ())} - self.tag_ids.keys()
        if names:
            self.tag_ids.update(ensure_tags(self.org_id, names))

    def stage(self, targets: list[Target]) -> Staged:
        """The chunk's final rows as COPY data (Python only).

        The values are those of this moment: later chunks may merge more into the same contacts,
        and are staged again then (adding a tag or a value twice is harmless).
        """
        now = timezone.now()
        creating, updating, new = [], [], {}
        tags, new_values, updated_values = [], [], []
        fields = self.planner.normalizer.custom_fields
        for target in targets:
            contact_id = target.contact_id
            if target.created_at is None:
                target.created_at = target.existing.created_at if target.existing is not None else now
            row = [contact_id, self.org_id, *self._column_values(target), target.created_at, now]
            is_new = target.existing is None and target.created_id not in self.inserted_ids
            if is_new:
                creating.append(row)
                new[target.created_id] = target
            else:
                updating.append(row)
            tags += [(contact_id, self.tag_ids[name], target.created_at) for name in target.given.get("tags", ())]
            values = new_values if is_new else updated_values
            for key, canonical in target.given.get("custom", {}).items():
                items = stored_rows(self.org_id, contact_id, fields[key], canonical, target.created_at)
                values += [_value_row(item) for item in items]
        self.inserted_ids.update(new)  # writes run in order: later chunks update these
        return Staged(
            targets,
            new,
            _copy_data(creating, WRITE_TYPES),
            _copy_data(updating, WRITE_TYPES),
            len(updating),
            _copy_data(tags, TAG_TYPES),
            _copy_data(new_values, VALUE_TYPES),
            _copy_data(updated_values, VALUE_TYPES),
        )

    def restage(self, staged: Staged) -> Staged:
        self.inserted_ids.difference_update(staged.new)
        return self.stage(staged.targets)

    def _column_values(self, target: Target) -> list:
        values = self.planner.final_values(target)
        return [Jsonb(values[c]) if c == "folded" else values[c] for c in COLUMNS]


def _value_row(row: FieldValue) -> tuple:
    return tuple(Jsonb(row.value) if c == "value" else getattr(row, c) for c in VALUE_COLUMNS)


def _copy_data(rows: list, types: tuple[str, ...]) -> bytes:
    """`rows` in COPY text format (psycopg's own formatting, without a database round trip)."""
    if not rows:
        return b""
    buffer = io.BytesIO()
    with psycopg.Copy(connection.connection.cursor(), writer=FileWriter(buffer)) as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)
    return buffer.getvalue()
