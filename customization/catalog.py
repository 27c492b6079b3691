"""Reading an org's catalogs in one query each, for hot paths (serializers, import, search)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from customization.models import CustomField, Tag


def custom_fields_by_key(org_id: int) -> dict[str, CustomField]:
    return {field.key: field for field in CustomField.objects.for_org(org_id)}


def ensure_tags(org_id: int, names: Iterable[str]) -> None:
    """Add tag names missing from the org's catalog (names already normalized). One INSERT."""
    unique = sorted(set(names))
    if unique:
        Tag.objects.bulk_create([Tag(org_id=org_id, name=name) for name in unique], ignore_conflicts=True)


def normalize_tag(raw) -> str:
    """Trimmed, lowercased, inner whitespace collapsed; raises ValueError when empty or > 64 chars."""
    from customization.models import TAG_MAX_LENGTH

    if not isinstance(raw, str):
        raise ValueError("Tags are strings.")
    if "\x00" in raw:
        raise ValueError("Tags cannot contain NUL characters.")
    name = " ".join(raw.split()).lower()
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
