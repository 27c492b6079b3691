"""Stage 1 of the compiler: JSON → a typed condition tree, structure only.

Every problem is collected (not just the first) as a `FieldError` whose `attr` is the dotted
path of the culprit (`query.groups.1.conditions.0.value`). Field names, operators and values
are checked against the org's fields in stage 2 (`contacts.search.compiler`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contacts.search.operators import clean_text
from crm.errors import FieldError, unknown_key
from crm.limits import (
    COUNT_MODES,
    DEFAULT_LIMIT,
    MAX_CONDITIONS,
    MAX_CURSOR_LENGTH,
    MAX_GROUPS,
    MAX_LIMIT,
    MAX_NAME_LENGTH,
    MAX_OFFSET,
    MAX_Q_LENGTH,
    MAX_SORT_KEYS,
    SORT_DIRECTIONS,
)

CONDITION_KEYS = frozenset({"field", "op", "value"})
GROUP_KEYS = frozenset({"conditions"})
QUERY_KEYS = frozenset({"groups"})
SORT_KEYS = frozenset({"field", "direction"})
BODY_KEYS = frozenset({"query", "q", "sort", "limit", "offset", "count", "cursor"})


@dataclass
class Condition:
    field: str
    op: str
    value: Any
    has_value: bool
    attr: str  # e.g. "query.groups.0.conditions.1"


@dataclass
class Group:
    conditions: list[Condition]


@dataclass
class Query:
    groups: list[Group] = field(default_factory=list)


@dataclass
class SortKey:
    field: str
    direction: str
    attr: str


@dataclass
class SearchRequest:
    query: Query
    q: str = ""
    sort: list[SortKey] = field(default_factory=list)
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    count: str = "exact"
    cursor: str | None = None


def _join(attr: str, key) -> str:
    return f"{attr}.{key}" if attr else str(key)


def unknown_keys(obj: dict, allowed: frozenset, attr: str, errors: list[FieldError]) -> None:
    errors.extend(unknown_key(key, attr) for key in obj if key not in allowed)


def _name(raw: Any, attr: str, what: str, errors: list[FieldError]) -> str | None:
    if raw is None:
        errors.append(FieldError(attr, "required", f"A {what} is required."))
        return None
    if not isinstance(raw, str):
        errors.append(FieldError(attr, "wrong_type", f"The {what} must be a string."))
        return None
    if not raw or len(raw) > MAX_NAME_LENGTH:
        errors.append(FieldError(attr, "invalid", f"The {what} must be 1–{MAX_NAME_LENGTH} characters."))
        return None
    return raw


def parse_query(raw: Any, attr: str, errors: list[FieldError]) -> Query:
    """`{"groups": [{"conditions": [{"field", "op", "value"}]}]}`; missing/null/{} = no groups."""
    if raw is None:
        return Query()
    if not isinstance(raw, dict):
        errors.append(FieldError(attr, "wrong_type", "Expected an object with `groups`."))
        return Query()
    unknown_keys(raw, QUERY_KEYS, attr, errors)
    groups_raw = raw.get("groups")
    groups_attr = _join(attr, "groups")
    if groups_raw is None:
        return Query()
    if not isinstance(groups_raw, list):
        errors.append(FieldError(groups_attr, "wrong_type", "Expected a list of groups."))
        return Query()
    if len(groups_raw) > MAX_GROUPS:
        errors.append(FieldError(groups_attr, "too_many", f"At most {MAX_GROUPS} groups."))
        return Query()
    groups: list[Group] = []
    total = 0
    for g_index, group_raw in enumerate(groups_raw):
        g_attr = _join(groups_attr, g_index)
        if not isinstance(group_raw, dict):
            errors.append(FieldError(g_attr, "wrong_type", "Expected an object with `conditions`."))
            continue
        unknown_keys(group_raw, GROUP_KEYS, g_attr, errors)
        c_attr = _join(g_attr, "conditions")
        conditions_raw = group_raw.get("conditions")
        if not isinstance(conditions_raw, list):
            code = "required" if conditions_raw is None else "wrong_type"
            errors.append(FieldError(c_attr, code, "Expected a list of conditions."))
            continue
        if not conditions_raw:
            errors.append(FieldError(c_attr, "empty", "A group needs at least one condition."))
            continue
        total += len(conditions_raw)
        if total > MAX_CONDITIONS:
            errors.append(FieldError(c_attr, "too_many", f"At most {MAX_CONDITIONS} conditions in all groups."))
            return Query(groups)
        conditions = []
        for index, cond_raw in enumerate(conditions_raw):
            condition = _parse_condition(cond_raw, _join(c_attr, index), errors)
            if condition is not None:
                conditions.append(condition)
        groups.append(Group(conditions))
    return Query(groups)


def _parse_condition(raw: Any, attr: str, errors: list[FieldError]) -> Condition | None:
    if not isinstance(raw, dict):
        errors.append(FieldError(attr, "wrong_type", "Expected an object with `field`, `op` and `value`."))
        return None
    unknown_keys(raw, CONDITION_KEYS, attr, errors)
    field_name = _name(raw.get("field"), _join(attr, "field"), "field", errors)
    op = _name(raw.get("op"), _join(attr, "op"), "op", errors)
    if field_name is None or op is None:
        return None
    return Condition(field_name, op, raw.get("value"), "value" in raw, attr)


def parse_sort(raw: Any, attr: str, errors: list[FieldError]) -> list[SortKey]:
    """`[{"field": "created_at", "direction": "desc"}]`; direction defaults to asc."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(FieldError(attr, "wrong_type", "Expected a list of {field, direction}."))
        return []
    if len(raw) > MAX_SORT_KEYS:
        errors.append(FieldError(attr, "too_many", f"At most {MAX_SORT_KEYS} sort keys."))
        return []
    keys = []
    for index, item in enumerate(raw):
        k_attr = _join(attr, index)
        if not isinstance(item, dict):
            errors.append(FieldError(k_attr, "wrong_type", "Expected {field, direction}."))
            continue
        unknown_keys(item, SORT_KEYS, k_attr, errors)
        name = _name(item.get("field"), _join(k_attr, "field"), "sort field", errors)
        direction = item.get("direction", "asc")
        if direction not in SORT_DIRECTIONS:
            errors.append(FieldError(_join(k_attr, "direction"), "invalid_choice", "Expected asc or desc."))
            continue
        if name is not None:
            keys.append(SortKey(name, direction, k_attr))
    return keys


def parse_q(raw: Any, attr: str, errors: list[FieldError]) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        errors.append(FieldError(attr, "wrong_type", "Expected a string."))
        return ""
    if len(raw) > MAX_Q_LENGTH:
        errors.append(FieldError(attr, "too_long", f"At most {MAX_Q_LENGTH} characters."))
        return ""
    if not clean_text(raw):
        errors.append(FieldError(attr, "invalid", "NUL characters and unpaired surrogates are not allowed."))
        return ""
    return raw


def _bounded_int(raw: Any, attr: str, default: int, lo: int, hi: int | None, errors: list[FieldError]) -> int:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < lo or (hi is not None and raw > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        errors.append(FieldError(attr, "out_of_range", f"{attr} must be an integer {bound}."))
        return default
    return raw


def parse_search_body(data: Any) -> tuple[SearchRequest, list[FieldError]]:
    """The body of `POST /contacts/search`, structurally."""
    errors: list[FieldError] = []
    if not isinstance(data, dict):
        return SearchRequest(Query()), [FieldError(None, "wrong_type", "Expected a JSON object.")]
    unknown_keys(data, BODY_KEYS, "", errors)
    count = data.get("count", "exact")
    if count not in COUNT_MODES:
        errors.append(FieldError("count", "invalid_choice", f"Expected one of: {', '.join(COUNT_MODES)}."))
        count = "exact"
    request = SearchRequest(
        query=parse_query(data.get("query"), "query", errors),
        q=parse_q(data.get("q"), "q", errors),
        sort=parse_sort(data.get("sort"), "sort", errors),
        limit=_bounded_int(data.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT, errors),
        offset=_bounded_int(data.get("offset"), "offset", 0, 0, MAX_OFFSET, errors),
        count=count,
        cursor=_parse_cursor(data.get("cursor"), errors),
    )
    if request.cursor and request.offset:
        errors.append(FieldError("cursor", "cursor_with_offset", "Use either cursor or offset, not both."))
    return request, errors


def _parse_cursor(raw: Any, errors: list[FieldError]) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) > MAX_CURSOR_LENGTH or not raw.isascii():
        errors.append(FieldError("cursor", "invalid_cursor", "Expected the next_cursor of a previous page."))
        return None
    return raw
