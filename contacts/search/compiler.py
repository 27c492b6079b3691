"""Stages 2 and 3 of the compiler: resolve each condition's field through the org's field
registry, check the operator and type the value (`contacts.search.operators`), then emit one
`Q` (OR across groups, AND within) and an ordering.

    compiler = SearchCompiler.for_member(membership)
    plan = compiler.compile_request(body)        # raises InvalidInput with every error
    page = plan.apply(Contact.objects.for_member(membership))
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.db.models.lookups import IsNull

from contacts.models import Contact, SmartListView
from contacts.paging import Driver, Selection
from contacts.search.fields import FieldRegistry, SearchField
from contacts.search.free_text import QText, q_rows
from contacts.search.operators import (
    ALL_OPERATORS,
    UNKNOWN_VIEW,
    Context,
    ValueProblem,
    drivers_of,
    kind_of,
    side_of,
)
from contacts.search.query import (
    Query,
    SearchRequest,
    SortKey,
    parse_q,
    parse_query,
    parse_search_body,
    parse_sort,
)
from crm.errors import FieldError, InvalidInput
from crm.limits import MAX_ROW_ID, MAX_VIEW_DEPTH
from customization.catalog import normalize_tag
from customization.models import Tag

DEFAULT_ORDER = ("-created_at", "-id")


@dataclass
class SortPlan:
    """An ordering as annotations plus plain `order_by` names (so any caller can append a tiebreak).

    Nullable keys get a `_sN_null` flag first: nulls last in both directions.
    """

    annotations: dict[str, Any] = field(default_factory=dict)
    order_by: list[str] = field(default_factory=lambda: list(DEFAULT_ORDER))

    def apply(self, queryset):
        if self.annotations:
            queryset = queryset.annotate(**self.annotations)
        return queryset.order_by(*self.order_by)


@dataclass
class SearchPlan:
    condition: Q  # OR of `groups`
    q: str
    sort: SortPlan
    limit: int
    offset: int
    count: str = "exact"
    cursor: str | None = None
    groups: list[Q] = field(default_factory=list)  # each group's AND of conditions

    @cached_property
    def text(self) -> QText:
        return QText.of(self.q)

    def filter(self, queryset):
        """The filtered (unordered) queryset: conditions AND q."""
        return queryset.filter(self.condition, self.text.rows)

    def selection(self, queryset, *, whole_org: bool = True) -> Selection:
        """The matches of `queryset` (already scoped) in both forms (contacts.paging.Selection): the
        ids narrowed through `q`'s index, and with several groups one query per group, UNIONed (each
        group is also a selection of its own, `arms`, paged alone).
        `whole_org`: the caller sees every contact of the org (then one tag or value condition in
        list order can be paged from its own rows' index, `Selection.side`, and a group's rare
        condition counted, `Selection.drivers`)."""
        has_filter = bool(self.condition) or bool(self.q)
        if len(self.groups) < 2:
            selection = Selection.of(self.filter(queryset), has_filter, narrow=self.text.index)
            if whole_org and not self.q and list(self.sort.order_by) == list(DEFAULT_ORDER):
                selection.side = side_of(self.condition)
            if whole_org and not self.condition and self.text.patterns:
                selection.counter = self.text.count
            return selection
        arms = []
        for group in self.groups:
            arm = Selection.of(queryset.filter(group, self.text.rows), bool(group) or bool(self.q), self.text.index)
            if whole_org:  # counted over the org: for a member who sees less, its time would tell
                arm.drivers = [Driver(side, queryset, Q(rest, self.text.rows)) for side, rest in drivers_of(group)]
            if whole_org and not self.q and list(self.sort.order_by) == list(DEFAULT_ORDER):
                arm.side = side_of(group)
            arms.append(arm)
        ids = arms[0].ids.union(*(arm.ids for arm in arms[1:]))
        return Selection(
            lambda: self.filter(queryset), ids, has_filter, common=bool(self.text.index), arms=arms, scope=queryset
        )


@dataclass
class SavedViews:
    """The saved views a query may name (`view in [ids]`), read once per compile and shared by the
    views compiled inside it: the org's stored views, or, while a PUT validates a new set, that set
    (`given`; only its views may be named). `members` memoizes each view's compiled selection."""

    org_id: int | None
    given: dict[int, SmartListView] | None = None
    loaded: dict[int, SmartListView | None] = field(default_factory=dict)
    members: dict[tuple[int, int], QuerySet | ValueProblem] = field(default_factory=dict)

    def get(self, ids: set[int]) -> dict[int, SmartListView]:
        if self.given is not None:
            return {view_id: self.given[view_id] for view_id in ids if view_id in self.given}
        missing = ids - self.loaded.keys()
        if missing and self.org_id is not None:
            found = SmartListView.objects.for_org(self.org_id).in_bulk(sorted(missing))
            self.loaded.update({view_id: found.get(view_id) for view_id in missing})
        return {view_id: self.loaded[view_id] for view_id in ids if self.loaded.get(view_id) is not None}


def chain_of(views) -> str:
    return " → ".join(f"{view.name!r} (id {view.pk})" for view in views)


# Codes that already name the view at fault: passed up unchanged through the views that contain it.
VIEW_PROBLEMS = ("view_cycle", "view_too_deep", "invalid_view")


class SearchCompiler:
    def __init__(
        self,
        registry: FieldRegistry,
        ctx: Context,
        org_id: int | None = None,
        saved_views: SavedViews | None = None,
        inside: tuple[SmartListView, ...] = (),
    ):
        self.registry = registry
        self.ctx = ctx
        self.org_id = org_id
        self.saved_views = SavedViews(org_id) if saved_views is None else saved_views
        self.inside = inside  # the saved views being compiled, outermost first

    @classmethod
    def for_member(cls, membership, now: dt.datetime | None = None) -> SearchCompiler:
        return cls.for_org(membership.org, now)

    @classmethod
    def for_org(cls, org, now: dt.datetime | None = None) -> SearchCompiler:
        return cls(FieldRegistry.for_org(org.id), Context.for_org(org, now), org.id)

    def resolve_tags(self, query: Query) -> None:
        """The catalog ids of the tag names `query` names, in one query: conditions compare tag ids,
        so the planner knows how common each tag is."""
        names = set()
        for group in query.groups:
            for condition in group.conditions:
                if condition.field != "tags" or not condition.has_value:
                    continue
                for raw in condition.value if isinstance(condition.value, list) else [condition.value]:
                    with contextlib.suppress(ValueError):  # reported when the condition is compiled
                        names.add(normalize_tag(raw))
        if names and self.org_id is not None:
            ids = dict(Tag.objects.for_org(self.org_id).filter(name__in=names).values_list("name", "id"))
            self.ctx = dataclasses.replace(self.ctx, tag_ids=ids)

    def resolve_views(self, query: Query) -> None:
        """What each saved view `query` names selects, compiled now (with the same "now", so a view
        of `within_next` moves with the clock), or why it cannot be applied."""
        ids = set()
        for group in query.groups:
            for condition in group.conditions:
                if condition.field == "view" and isinstance(condition.value, list):
                    ids |= {v for v in condition.value if type(v) is int and 1 <= v <= MAX_ROW_ID}
        if not ids:
            return
        found = self.saved_views.get(ids)
        views = {view_id: ValueProblem("unknown_view", UNKNOWN_VIEW) for view_id in ids}
        views |= {view_id: self.view_members(view) for view_id, view in found.items()}
        self.ctx = dataclasses.replace(self.ctx, views=views)

    def view_members(self, view: SmartListView) -> QuerySet | ValueProblem:
        """The org's contacts in `view` (its query AND its q), or the problem that keeps it from being
        applied: a cycle, nesting deeper than MAX_VIEW_DEPTH, or an invalid part."""
        ids = [inside.pk for inside in self.inside]
        if view.pk in ids:
            loop = [*self.inside[ids.index(view.pk) :], view]
            return ValueProblem("view_cycle", f"Saved views refer to each other in a cycle: {chain_of(loop)}.")
        if len(self.inside) >= MAX_VIEW_DEPTH:
            detail = f"Saved views may be nested at most {MAX_VIEW_DEPTH} deep: {chain_of([*self.inside, view])}."
            return ValueProblem("view_too_deep", detail)
        key = (view.pk, len(self.inside))
        if key not in self.saved_views.members:
            self.saved_views.members[key] = self.nested(view).selection_of(view)
        return self.saved_views.members[key]

    def nested(self, view: SmartListView) -> SearchCompiler:
        """A compiler for the query of `view`, inside the views being compiled."""
        ctx = dataclasses.replace(self.ctx, tag_ids={}, views={})
        return SearchCompiler(self.registry, ctx, self.org_id, self.saved_views, (*self.inside, view))

    def selection_of(self, view: SmartListView) -> QuerySet | ValueProblem:
        errors: list[FieldError] = []
        condition = self.compile_query(parse_query(view.query, "query", errors), errors)
        q = parse_q(view.q, "q", errors)
        if errors:
            first = errors[0]
            if first.code in VIEW_PROBLEMS:
                return ValueProblem(first.code, first.detail)
            detail = f"The saved view {view.name!r} (id {view.pk}) cannot be applied: {first.detail} ({first.attr})"
            return ValueProblem("invalid_view", detail)
        return Contact.objects.for_org(self.org_id).filter(condition, q_rows(q))  # q as a row check: no look-up

    # --- stage 2 + 3 ----------------------------------------------------------------

    def resolve_field(self, name: str, attr: str, errors: list[FieldError]) -> SearchField | None:
        found = self.registry.get(name)
        if found is None:
            shown = name[:100]
            if shown.startswith("custom."):
                detail = f"No custom field {shown!r} in this organization (it may have been deleted)."
                errors.append(FieldError(attr, "unknown_custom_field", detail))
            else:
                errors.append(FieldError(attr, "unknown_field", f"No field {shown!r}; see GET /contacts/fields."))
        return found

    def compile_query(self, query: Query, errors: list[FieldError]) -> Q:
        """OR across groups, AND within; no groups = every contact."""
        return any_of(self.compile_groups(query, errors))

    def compile_groups(self, query: Query, errors: list[FieldError]) -> list[Q]:
        """Each group's AND of its conditions."""
        if not query.groups:
            return []
        self.resolve_tags(query)
        self.resolve_views(query)
        groups = []
        for group in query.groups:
            group_q = Q()
            for condition in group.conditions:
                condition_q = self.compile_condition(condition, errors)
                if condition_q is not None:
                    group_q &= condition_q
            groups.append(group_q)
        return groups

    def compile_condition(self, condition, errors: list[FieldError]) -> Q | None:
        search_field = self.resolve_field(condition.field, f"{condition.attr}.field", errors)
        op_attr = f"{condition.attr}.op"
        if condition.op not in ALL_OPERATORS:
            errors.append(
                FieldError(op_attr, "unknown_operator", f"Unknown operator; one of: {', '.join(ALL_OPERATORS)}.")
            )
            return None
        if search_field is None:
            return None
        kind = kind_of(search_field)
        if condition.op not in search_field.operators:
            errors.append(
                FieldError(
                    op_attr,
                    "invalid_operator",
                    f"{condition.op} does not apply to {search_field.name} ({search_field.type}); "
                    f"use one of: {', '.join(search_field.operators)}.",
                )
            )
            return None
        try:
            value = kind.parse(search_field, condition.op, condition.value, condition.has_value, self.ctx)
            return kind.build(search_field, condition.op, value, self.ctx)
        except ValueProblem as problem:
            attr = f"{condition.attr}.value" + (f".{problem.path}" if problem.path else "")
            errors.append(FieldError(attr, problem.code, problem.detail))
            return None

    def sort_value(self, name: str):
        """What a list sorts by for the field `name`, as the API's `sort` does; None when the org has
        no such field or it does not sort (the admin's sortable custom columns)."""
        search_field = self.registry.get(name)
        if search_field is None or not search_field.sortable:
            return None
        return kind_of(search_field).sort_expression(search_field)

    def compile_sort(self, keys: list[SortKey], errors: list[FieldError]) -> SortPlan:
        if not keys:
            return SortPlan()
        plan = SortPlan(order_by=[])
        for index, key in enumerate(keys):
            search_field = self.resolve_field(key.field, f"{key.attr}.field", errors)
            if search_field is None:
                continue
            if not search_field.sortable:
                errors.append(FieldError(f"{key.attr}.field", "not_sortable", f"{key.field} cannot be sorted on."))
                continue
            sign = "-" if key.direction == "desc" else ""
            expression = kind_of(search_field).sort_expression(search_field)
            if not search_field.is_custom and not search_field.nullable:
                plan.order_by.append(sign + search_field.column)  # a plain column: index-friendly
                continue
            name = f"sort_{index}"
            plan.annotations[name] = expression
            plan.annotations[f"{name}_null"] = Case(
                When(IsNull(expression, True), then=Value(1)), default=Value(0), output_field=IntegerField()
            )
            plan.order_by += [f"{name}_null", sign + name]
        plan.order_by.append("-id" if keys[0].direction == "desc" else "id")
        return plan

    # --- whole requests ---------------------------------------------------------------

    def compile_request(self, body: Any) -> SearchPlan:
        request, errors = parse_search_body(body)
        plan = self.compile_parsed(request, errors)
        if errors:
            raise InvalidInput(errors)
        return plan

    def compile_parsed(self, request: SearchRequest, errors: list[FieldError]) -> SearchPlan:
        groups = self.compile_groups(request.query, errors)
        sort = self.compile_sort(request.sort, errors)
        return SearchPlan(
            any_of(groups), request.q, sort, request.limit, request.offset, request.count, request.cursor, groups
        )

    def validate_view(
        self, query: Any, q: Any, sort: Any, attr: str, errors: list[FieldError], view: SmartListView | None = None
    ) -> dict:
        """A saved view's parts, validated like a search; returns their normalized JSON. `view`: the
        stored view these parts replace (so naming itself, directly or not, is a cycle)."""
        compiler = self if view is None else self.nested(view)
        parsed_query = parse_query(query, f"{attr}.query", errors)
        parsed_q = parse_q(q, f"{attr}.q", errors)
        parsed_sort = parse_sort(sort, f"{attr}.sort", errors)
        compiler.compile_query(parsed_query, errors)
        compiler.compile_sort(parsed_sort, errors)
        return {
            "query": query_to_json(parsed_query),
            "q": parsed_q,
            "sort": [{"field": k.field, "direction": k.direction} for k in parsed_sort],
        }

    def compile_view(self, view, attr: str = "view") -> SearchPlan:
        """A stored view → a plan; a field deleted since it was saved is a 422 naming it."""
        errors: list[FieldError] = []
        request = SearchRequest(
            query=parse_query(view.query, f"{attr}.query", errors),
            q=parse_q(view.q, f"{attr}.q", errors),
            sort=parse_sort(view.sort, f"{attr}.sort", errors),
        )
        plan = self.nested(view).compile_parsed(request, errors)
        if errors:
            raise InvalidInput(errors, detail=f"The saved view {view.name!r} cannot be applied.")
        return plan


def any_of(groups: list[Q]) -> Q:
    """OR of the groups; no groups = every contact."""
    result = Q()
    for index, group in enumerate(groups):
        result = group if index == 0 else result | group
    return result


def query_to_json(query: Query) -> dict:
    return {
        "groups": [
            {
                "conditions": [
                    {"field": c.field, "op": c.op, **({"value": c.value} if c.has_value else {})}
                    for c in group.conditions
                ]
            }
            for group in query.groups
        ]
    }


def builtin_sort(keys: list[SortKey]) -> SortPlan:
    """The smart-list sort over built-in fields only (`GET /contacts?ordering=`): nulls last in both
    directions, ties broken on id. It needs nothing of the org; names were validated by the caller."""
    errors: list[FieldError] = []
    plan = SearchCompiler(FieldRegistry(), ctx=None).compile_sort(keys, errors)
    if errors:
        raise InvalidInput(errors)
    return plan
