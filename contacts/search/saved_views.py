"""Saved smart-list views: the org's whole set, read and replaced at once (`GET`/`PUT /contacts/views`).

The set carries an ETag (a hash of its content); a replacement with an `If-Match` that no
longer matches changes nothing (412). Each view's query/q/sort is validated by the search
compiler exactly like a search, with attrs prefixed `views.<i>.`. A view may name other views
(`view in [ids]`) only among those the same PUT keeps, as that PUT defines them: the set saved
never refers to a view it deletes, nor in a cycle.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction

from contacts.models import SmartListView
from contacts.search.compiler import SavedViews, SearchCompiler
from contacts.search.operators import clean_text
from contacts.search.query import unknown_keys
from crm.errors import FieldError, InvalidInput, PreconditionFailed
from crm.limits import MAX_VIEW_NAME, MAX_VIEWS
from orgs.models import Organization

MAX_COLUMNS = 100
MAX_POSITION = 2**31 - 1
VIEW_KEYS = frozenset({"id", "name", "query", "q", "sort", "columns", "position"})
EXTRA_COLUMNS = ("id",)  # displayable though not filterable


def view_to_json(view: SmartListView) -> dict:
    return {
        "id": view.id,
        "name": view.name,
        "query": {"groups": [], **(view.query or {})},  # a view saved as {} still answers its (no) groups
        "q": view.q,
        "sort": view.sort,
        "columns": view.columns,
        "position": view.position,
    }


def list_views(membership) -> list[dict]:
    return [view_to_json(v) for v in SmartListView.objects.for_member(membership).order_by("position", "id")]


def etag_of(views: list[dict]) -> str:
    digest = hashlib.sha256(json.dumps(views, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f'"{digest[:40]}"'


def if_match_allows(header: str | None, etag: str) -> bool:
    """RFC 9110 If-Match: absent or `*` passes; otherwise one of the listed tags must equal ours."""
    if header is None:
        return True
    candidates = [part.strip() for part in header.split(",")]
    bare = etag.strip('"')
    return any(c == "*" or c.removeprefix("W/").strip('"') == bare for c in candidates)


def _kept_views(raw_views: list) -> dict[int, SmartListView]:
    """The views of a PUT that keep an id, as it defines them: the only views its queries may name."""
    kept = {}
    for raw in raw_views:
        view_id = raw.get("id") if isinstance(raw, dict) else None
        if type(view_id) is int and view_id >= 1:
            name = raw.get("name") if isinstance(raw.get("name"), str) else ""
            kept[view_id] = SmartListView(pk=view_id, name=name.strip(), query=raw.get("query"), q=raw.get("q"))
    return kept


def _clean_entry(
    raw: Any, index: int, compiler: SearchCompiler, columns_known: set[str], errors: list[FieldError]
) -> dict | None:
    attr = f"views.{index}"
    if not isinstance(raw, dict):
        errors.append(FieldError(attr, "wrong_type", "Expected a view object."))
        return None
    unknown_keys(raw, VIEW_KEYS, attr, errors)
    entry: dict[str, Any] = {}

    view_id = raw.get("id")
    if view_id is not None and (isinstance(view_id, bool) or not isinstance(view_id, int) or view_id < 1):
        errors.append(FieldError(f"{attr}.id", "wrong_type", "Expected the id of an existing view, or no id."))
    entry["id"] = view_id

    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        code = "required" if name is None else "invalid"
        errors.append(FieldError(f"{attr}.name", code, "A non-blank name is required."))
    elif len(name.strip()) > MAX_VIEW_NAME or not clean_text(name):
        errors.append(FieldError(f"{attr}.name", "too_long", f"At most {MAX_VIEW_NAME} characters, no NUL."))
    else:
        entry["name"] = name.strip()

    position = raw.get("position", index)
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= MAX_POSITION:
        errors.append(FieldError(f"{attr}.position", "out_of_range", "Expected a non-negative integer."))
    entry["position"] = position

    columns = raw.get("columns")
    columns = [] if columns is None else columns  # `{}` or "" is the wrong type, not "no columns"
    if not isinstance(columns, list) or len(columns) > MAX_COLUMNS:
        errors.append(
            FieldError(f"{attr}.columns", "wrong_type", f"Expected a list of at most {MAX_COLUMNS} field names.")
        )
    else:
        for c_index, column in enumerate(columns):
            if not isinstance(column, str) or column not in columns_known:
                errors.append(
                    FieldError(
                        f"{attr}.columns.{c_index}",
                        "unknown_field",
                        "Not a field of this organization; see GET /contacts/fields.",
                    )
                )
        entry["columns"] = columns

    itself = compiler.saved_views.given.get(view_id) if type(view_id) is int else None
    entry.update(compiler.validate_view(raw.get("query"), raw.get("q"), raw.get("sort"), attr, errors, itself))
    return entry


def replace_views(membership, body: Any, if_match: str | None) -> list[dict]:
    """Replace the org's views with `body["views"]` atomically; returns the new set."""
    if not isinstance(body, dict):
        raise InvalidInput([FieldError(None, "wrong_type", 'Expected {"views": [...]}.')])
    errors: list[FieldError] = []
    unknown_keys(body, frozenset({"views"}), "", errors)
    raw_views = body.get("views")
    if not isinstance(raw_views, list):
        errors.append(
            FieldError("views", "required" if raw_views is None else "wrong_type", "Expected a list of views.")
        )
        raise InvalidInput(errors)
    if len(raw_views) > MAX_VIEWS:
        raise InvalidInput([FieldError("views", "too_many", f"At most {MAX_VIEWS} views.")])

    compiler = SearchCompiler.for_member(membership)
    compiler.saved_views = SavedViews(membership.org_id, given=_kept_views(raw_views))
    columns_known = {f.name for f in compiler.registry.all()} | set(EXTRA_COLUMNS)
    entries = [_clean_entry(raw, i, compiler, columns_known, errors) for i, raw in enumerate(raw_views)]
    seen: set[int] = set()
    for index, entry in enumerate(entries):
        if entry and isinstance(entry["id"], int):
            if entry["id"] in seen:
                errors.append(FieldError(f"views.{index}.id", "duplicate", "This id appears twice."))
            seen.add(entry["id"])
    if errors:
        raise InvalidInput(errors)

    with transaction.atomic():
        # One replacement at a time per org, so the If-Match check and the writes see the same set.
        Organization.objects.select_for_update().filter(pk=membership.org_id).first()
        existing = {v.id: v for v in SmartListView.objects.for_member(membership).order_by("position", "id")}
        if not if_match_allows(if_match, etag_of([view_to_json(v) for v in existing.values()])):
            raise PreconditionFailed()
        for index, entry in enumerate(entries):
            if entry["id"] is not None and entry["id"] not in existing:
                errors.append(FieldError(f"views.{index}.id", "does_not_exist", "No such view in this organization."))
        if errors:
            raise InvalidInput(errors)
        keep = {entry["id"] for entry in entries if entry["id"] is not None}
        SmartListView.objects.for_member(membership).exclude(pk__in=keep).delete()
        fields = ("name", "query", "q", "sort", "columns", "position")
        for entry in entries:
            values = {name: entry[name] for name in fields}
            if entry["id"] is None:
                SmartListView.objects.create(org_id=membership.org_id, **values)
            else:
                view = existing[entry["id"]]
                if any(getattr(view, name) != value for name, value in values.items()):
                    for name, value in values.items():
                        setattr(view, name, value)
                    view.save()
    return list_views(membership)
