"""Reading an org's catalogs in one query each, for hot paths (serializers, import, search)."""

from __future__ import annotations

from collections.abc import Iterable

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
    name = " ".join(raw.split()).lower()
    if not name:
        raise ValueError("Tags cannot be empty.")
    if len(name) > TAG_MAX_LENGTH:
        raise ValueError(f"Tags are at most {TAG_MAX_LENGTH} characters.")
    return name
