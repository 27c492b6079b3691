"""Reading an org's catalogs in one query each, for hot paths (serializers, import, search)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property

from django.db import connection

from customization.models import CustomField, Tag
from customization.text import fold


def custom_fields_by_key(org_id: int) -> dict[str, CustomField]:
    return {field.key: field for field in CustomField.objects.for_org(org_id)}


class FieldCatalog(Mapping[str, CustomField]):
    """An org's custom fields by key, read when first looked into: a write that sets no custom
    value (a PATCH of a company) never reads the org's catalog, however many fields it has."""

    def __init__(self, org_id: int):
        self.org_id = org_id

    @cached_property
    def _by_key(self) -> dict[str, CustomField]:
        return custom_fields_by_key(self.org_id)

    def __getitem__(self, key: str) -> CustomField:
        return self._by_key[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)


def ensure_tags(org_id: int, names: Iterable[str]) -> dict[str, int]:
    """The catalog ids of `names` (already normalized), adding the missing ones: one INSERT … ON
    CONFLICT DO NOTHING and one SELECT. The rows are read FOR KEY SHARE, so a concurrent delete of
    one of these tags waits for the caller's transaction (which is about to refer to it) to end,
    while renames go ahead (a contact refers to its tag by id)."""
    ids: dict[str, int] = {}
    missing = sorted(set(names))
    for _ in range(3):  # a name renamed away between the INSERT and the SELECT is inserted again
        if not missing:
            break
        Tag.objects.bulk_create([Tag(org_id=org_id, name=name) for name in missing], ignore_conflicts=True)
        with connection.cursor() as cursor:  # FOR KEY SHARE: not in the ORM
            cursor.execute(
                f"SELECT name, id FROM {Tag._meta.db_table} WHERE org_id = %s AND name = ANY(%s) FOR KEY SHARE",
                [org_id, missing],
            )
            ids.update(cursor.fetchall())
        missing = [name for name in missing if name not in ids]
    if missing:
        raise RuntimeError(f"Tags {missing} kept being renamed while they were added.")
    return ids


def normalize_tag(raw) -> str:
    """Trimmed, case-folded, inner whitespace collapsed; raises ValueError when empty or > 64 chars."""
    from customization.models import TAG_MAX_LENGTH

    if not isinstance(raw, str):
        raise ValueError("Tags are strings.")
    if len(raw) > TAG_MAX_LENGTH:  # as given, and again once normalized (folding may lengthen it)
        raise ValueError(f"Tags are at most {TAG_MAX_LENGTH} characters.")
    if "\x00" in raw:
        raise ValueError("Tags cannot contain NUL characters.")
    name = fold(" ".join(raw.split()))
    if not name:
        raise ValueError("Tags cannot be empty.")
    if len(name) > TAG_MAX_LENGTH:
        raise ValueError(f"Tags are at most {TAG_MAX_LENGTH} characters.")
    return name


# Contacts count tag usage (customization knows nothing of contacts): it registers a function
# `(membership, names) -> {name: count}` at startup, counting only contacts the member can see.
TagCounter = Callable[[object, list[str]], dict[str, int]]
_tag_counter: TagCounter | None = None


def register_tag_counter(counter: TagCounter) -> None:
    global _tag_counter
    _tag_counter = counter


def tag_contact_counts(membership, names: list[str]) -> dict[str, int]:
    """How many contacts visible to `membership` carry each of `names` (0 when none)."""
    counts = _tag_counter(membership, names) if _tag_counter is not None and names else {}
    return {name: counts.get(name, 0) for name in names}
