"""The contact list: the organization it shows, its saved view, its custom columns and filters.

Every filter of the list but the organization is one smart-list condition, compiled by the search
compiler for the list's organization (contacts.search), as `GET /contacts?view=` and `POST
/contacts/search` compile theirs. The whole filtered list ("select all N") is those conditions as a
SmartList (contacts.smart_list), which is what a bulk job or an export of it selects: the list and
what an action on it touches are one query. Filters need an organization (as every query of the
API does): they appear once the list has one (chosen, implied by the saved view, or the staff
user's only one).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.main import ORDER_VAR, PAGE_VAR, ChangeList
from django.http import QueryDict
from django.urls import reverse

from contacts.admin.base import error_text, parse_ids, person
from contacts.models import Contact, SmartListView, attach_tags_and_custom
from contacts.search import SearchCompiler
from contacts.search.compiler import SearchPlan
from contacts.smart_list import SmartList
from crm.errors import InvalidInput
from crm.limits import MAX_Q_LENGTH
from customization.catalog import custom_fields_by_key
from customization.models import CustomField, Tag
from orgs.admin import OrgFilter, staff_scope
from orgs.models import Organization

COLUMNS = "columns"  # ?columns=custom.plan,custom.tier: custom fields shown as list columns
VIEW = "view"
SEARCH = "q"
CUSTOM = "custom."
MAX_VIEWS_SHOWN = 30
MAX_CUSTOM_FILTERS = 12
FILTERED_TYPES = ("single_select", "multi_select", "boolean", "number", "date", "datetime")


@dataclass
class ContactList:
    """One request's contact list: its org (None: every org the staff user sees), saved view,
    custom columns, and the conditions its filters applied (for an action on the whole list)."""

    org: Organization | None
    view: SmartListView | None
    definitions: dict[str, CustomField]
    columns: list[CustomField]
    params: QueryDict  # the list's query string
    problems: list[str] = field(default_factory=list)
    conditions: dict[str, dict] = field(default_factory=dict)  # filter parameter -> its condition
    view_plan: SearchPlan | None = None
    column_functions: list | None = None  # the admin's custom columns (ContactAdmin.custom_columns)

    @cached_property
    def compiler(self) -> SearchCompiler:
        return SearchCompiler.for_org(self.org)

    def sort_of(self, definition: CustomField):
        """How a click on a custom column's header sorts the list: by the search compiler's sort
        value of the field (the API's `sort`), contacts without one last; None if it does not sort.
        Django reverses it for the descending click, the empty ones then coming first."""
        value = self.compiler.sort_value(CUSTOM + definition.key)
        return None if value is None else value.asc(nulls_last=True)

    @property
    def spans_orgs(self) -> bool:
        return self.org is None

    def narrow(self, queryset, parameter: str, condition: dict | None, what: str):
        """`queryset` narrowed by one condition of a filter, compiled for the list's org."""
        if self.org is None:
            self.problems.append(f"Choose an organization to filter by {what}.")
            return queryset.none()
        if condition is None:
            self.problems.append(f"Not a filter value of {what}.")
            return queryset.none()
        try:
            plan = self.compiler.compile_request({"query": {"groups": [{"conditions": [condition]}]}})
        except InvalidInput as exc:
            self.problems.append(error_text(exc))
            return queryset.none()
        self.conditions[parameter] = condition
        return plan.filter(queryset.filter(org_id=self.org.pk))

    def smart_list(self) -> SmartList:
        """The whole filtered list as the API names it: its conditions (the view as `view in`), `q`."""
        conditions = list(self.conditions.values())
        if self.view is not None:
            conditions.append({"field": "view", "op": "in", "value": [self.view.pk]})
        query = {"groups": [{"conditions": conditions}]} if conditions else None
        return SmartList(query=query, q=self.params.get(SEARCH, "").strip()[:MAX_Q_LENGTH])

    @property
    def views_bar(self) -> list[dict]:
        """The org's saved views as one-click filters of the list (the views bar)."""
        if self.org is None:
            return []
        views = SmartListView.objects.for_org(self.org.pk).order_by("position", "id")[:MAX_VIEWS_SHOWN]
        chosen = self.view.pk if self.view else None
        everyone = query_string(self.params, {VIEW: None, "org": str(self.org.pk)})
        rows = [{"name": "All contacts", "url": everyone, "active": chosen is None}]
        for view in views:
            url = query_string(self.params, {VIEW: str(view.pk), "org": str(self.org.pk)})
            rows.append({"name": view.name, "url": url, "active": view.pk == chosen, "id": view.pk})
        return rows

    @property
    def column_choices(self) -> list[dict]:
        """Each custom field of the org as a column toggle (the column chooser)."""
        shown = [f.key for f in self.columns]
        choices = []
        for key, definition in self.definitions.items():
            keys = [k for k in shown if k != key] if key in shown else [*shown, key]
            value = ",".join(CUSTOM + k for k in keys) or None
            url = query_string(self.params, {COLUMNS: value, "org": str(self.org.pk)})
            choices.append({"key": CUSTOM + key, "label": definition.name, "url": url, "active": key in shown})
        return choices

    @property
    def save_view_url(self) -> str | None:
        """The add form of a saved view, prefilled with this list's filters and columns."""
        if self.org is None:
            return None
        smart = self.smart_list()
        params = {"org": self.org.pk, "q": smart.q, COLUMNS: ",".join(CUSTOM + f.key for f in self.columns)}
        if smart.query:
            params["query"] = _json(smart.query)
        return f"{reverse('admin:contacts_smartlistview_add')}?{urlencode({k: v for k, v in params.items() if v})}"


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def query_string(current: QueryDict, changes: dict[str, str | None]) -> str:
    """The list's query string with `changes` (None removes), back on page one."""
    params = current.copy()
    for name in (PAGE_VAR, "e"):
        params.pop(name, None)
    for name, value in changes.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return "?" + params.urlencode() if params else "?"


def contact_list(request) -> ContactList:
    """The request's contact list, resolved once."""
    found = getattr(request, "_contact_list", None)
    if found is None:
        found = request._contact_list = _resolve(request)
    return found


def _resolve(request) -> ContactList:
    scope = staff_scope(request)
    problems: list[str] = []
    org = None
    asked_org = parse_ids([request.GET.get("org", "")])
    if asked_org and scope.sees_org(asked_org[0]):
        org = Organization.objects.filter(pk=asked_org[0]).first()
    view = None
    asked_view = parse_ids([request.GET.get(VIEW, "")])
    if asked_view:
        view = scope.filter(SmartListView.objects.select_related("org")).filter(pk=asked_view[0]).first()
        if view is not None and org is not None and view.org_id != org.pk:
            problems.append(f"The saved view “{view}” is one of {view.org}, not of {org}.")
            view = None
        elif view is not None:
            org = view.org
        else:
            problems.append(f"No saved view #{asked_view[0]} in your organizations.")
    if org is None and not request.GET.get("org"):
        org = scope.single_org()
    definitions = custom_fields_by_key(org.pk) if org is not None else {}
    state = ContactList(org, view, definitions, [], request.GET.copy(), problems)
    state.columns = _columns(request, state)
    return state


def _columns(request, state: ContactList) -> list[CustomField]:
    """The custom fields shown as columns: `?columns=` (comma-separated, or repeated), else the
    saved view's own columns; unknown ones are named in a warning."""
    raw = [part for value in request.GET.getlist(COLUMNS) for part in value.split(",") if part.strip()]
    if not raw and state.view is not None:
        return [state.definitions[c[len(CUSTOM) :]] for c in state.view.columns or [] if _known(c, state)]
    if raw and state.org is None:
        state.problems.append("Choose an organization to show custom-field columns.")
        return []
    columns = []
    for name in dict.fromkeys(part.strip() for part in raw):
        if _known(name, state):
            columns.append(state.definitions[name[len(CUSTOM) :]])
        else:
            state.problems.append(f"No custom field {name!r} in {state.org}: that column is not shown.")
    return columns


def _known(name, state: ContactList) -> bool:
    return isinstance(name, str) and name.startswith(CUSTOM) and name[len(CUSTOM) :] in state.definitions


# --- filters -----------------------------------------------------------------------------------------


class ListFilter(admin.SimpleListFilter):
    """A filter with a value is applied even when it offers no choices (Django drops filters without
    output: a saved view of another org or a tag without an org would be silently ignored)."""

    def has_output(self) -> bool:
        return super().has_output() or self.value() is not None


class ConditionFilter(ListFilter):
    """A list filter that is one smart-list condition of the list's org."""

    def lookups(self, request, model_admin):
        state = contact_list(request)
        return [] if state.org is None else self.options(request, state)

    def options(self, request, state: ContactList) -> list[tuple[str, str]]:
        raise NotImplementedError

    def condition(self, value: str, request) -> dict | None:
        raise NotImplementedError

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        state = contact_list(request)
        return state.narrow(queryset, self.parameter_name, self.condition(value, request), str(self.title))


class SavedViewFilter(ListFilter):
    """A saved view (SmartListView) of the org, applied as `GET /contacts?view=` applies it: its
    query, `q` and sort, through the search compiler."""

    title = "saved view"
    parameter_name = VIEW

    def lookups(self, request, model_admin):
        state = contact_list(request)
        if state.org is not None:
            views = SmartListView.objects.for_org(state.org.pk).order_by("position", "id")
            return [(str(v.pk), v.name) for v in views[:MAX_VIEWS_SHOWN]]
        views = staff_scope(request).filter(SmartListView.objects.select_related("org")).order_by("org_id", "position")
        return [(str(v.pk), f"{v.name} ({v.org.name})") for v in views[:MAX_VIEWS_SHOWN]]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        state = contact_list(request)
        if state.view is None:
            return queryset.none()  # the reason is among the list's problems
        try:
            plan = state.view_plan or state.compiler.compile_view(state.view)
        except InvalidInput as exc:
            state.problems.append(error_text(exc))
            return queryset.none()
        state.view_plan = plan
        return plan.sort.apply(plan.filter(queryset.filter(org_id=state.view.org_id)))


class TagFilter(ConditionFilter):
    """Tags of the org's catalog (the first ones by name)."""

    title = "tag"
    parameter_name = "tag"
    limit = 100

    def options(self, request, state):
        names = list(Tag.objects.for_org(state.org.pk).order_by("name").values_list("name", flat=True)[: self.limit])
        if self.value() and self.value() not in names:
            names.append(self.value())
        return [(name, name) for name in names]

    def condition(self, value, request):
        return {"field": "tags", "op": "contains", "value": value}


class AssigneeFilter(ConditionFilter):
    title = "assigned to"
    parameter_name = "assigned_to"
    limit = 50

    def options(self, request, state):
        members = staff_scope(request).members().filter(memberships__org_id=state.org.pk).order_by("email")
        people = [(str(u.pk), person(u)) for u in members[: self.limit]]
        return [("me", "Me"), ("none", "Nobody"), *people]

    def condition(self, value, request):
        if value == "none":
            return {"field": "assigned_to", "op": "is_empty"}
        user_id = request.user.pk if value == "me" else (parse_ids([value]) or [None])[0]
        return None if user_id is None else {"field": "assigned_to", "op": "eq", "value": user_id}


class DncFilter(ConditionFilter):
    title = "do not contact"
    parameter_name = "dnc"

    def options(self, request, state):
        return [("yes", "Do not contact"), ("no", "May be contacted")]

    def condition(self, value, request):
        return {"field": "dnc", "op": "eq", "value": value == "yes"} if value in ("yes", "no") else None


class SourceFilter(ConditionFilter):
    """Sources seen on the org's most recent contacts (no DISTINCT over the whole table)."""

    title = "source"
    parameter_name = "source"
    sample = 5000

    def options(self, request, state):
        recent = Contact.objects.for_org(state.org.pk).order_by("-created_at", "-id").values_list("source", flat=True)
        recent = recent[: self.sample]
        sources = sorted({source for source in recent if source})
        if self.value() and self.value() not in sources:
            sources.append(self.value())
        return [(source, source) for source in sources[:50]]

    def condition(self, value, request):
        return {"field": "source", "op": "eq", "value": value}


EMPTY, SET = "(empty)", "(set)"
DATE_PRESETS = {
    "today": ("Today", {"op": "today"}),
    "next7": ("In the next 7 days", {"op": "within_next", "value": {"amount": 7, "unit": "days"}}),
    "next30": ("In the next 30 days", {"op": "within_next", "value": {"amount": 30, "unit": "days"}}),
    "past30": ("More than 30 days ago", {"op": "more_than_ago", "value": {"amount": 30, "unit": "days"}}),
}


class CustomValueFilter(ConditionFilter):
    """One custom field of the org: by option (selects), yes/no (booleans), a date preset, or a
    number range given as `lo..hi` (`lo..`, `..hi`); `(empty)` / `(set)` for any of them."""

    definition: CustomField

    def options(self, request, state):
        data_type = self.definition.data_type
        if data_type in ("single_select", "multi_select"):
            values = [(option, option) for option in self.definition.options or []]
        elif data_type == "boolean":
            values = [("yes", "Yes"), ("no", "No")]
        elif data_type in ("date", "datetime"):
            values = [(key, label) for key, (label, _) in DATE_PRESETS.items()]
        else:
            values = []
        return [*values, (SET, "Any value"), (EMPTY, "No value")]

    def condition(self, value, request):
        name, data_type = CUSTOM + self.definition.key, self.definition.data_type
        if value in (EMPTY, SET):
            return {"field": name, "op": "is_empty" if value == EMPTY else "is_not_empty"}
        if data_type == "boolean":
            return {"field": name, "op": "eq", "value": value == "yes"} if value in ("yes", "no") else None
        if data_type in ("date", "datetime"):
            return {"field": name, **DATE_PRESETS[value][1]} if value in DATE_PRESETS else None
        if data_type == "number":
            return number_range(name, value)
        return {"field": name, "op": "contains" if data_type == "multi_select" else "eq", "value": value}


class NumberRangeFilter(CustomValueFilter):
    """A number field's filter, with a box for its range (`lo..hi`) under the choices: a GET form
    that keeps the list's other parameters, back on page one."""

    template = "admin/contacts/contact/number_range_filter.html"
    kept: list[tuple[str, str]] = []  # the list's other parameters, as the form's hidden fields

    def choices(self, changelist):
        # By exact name: get_query_string(remove=…) drops every parameter that starts with one.
        current = QueryDict(changelist.get_query_string()[1:])
        dropped = {self.parameter_name, PAGE_VAR, "e"}
        self.kept = [(name, value) for name, values in current.lists() if name not in dropped for value in values]
        yield from super().choices(changelist)


def number_range(name: str, value: str) -> dict | None:
    """`lo..hi`, `lo..`, `..hi` or a number, as a condition on a number field."""
    low, dots, high = value.partition("..")
    try:
        bounds = [float(part) if part.strip() else None for part in (low, high)]
    except ValueError:
        return None
    if not dots:
        return {"field": name, "op": "eq", "value": bounds[0]} if bounds[0] is not None else None
    if None not in bounds:
        return {"field": name, "op": "between", "value": bounds}
    if bounds[0] is not None:
        return {"field": name, "op": "gte", "value": bounds[0]}
    return {"field": name, "op": "lte", "value": bounds[1]} if bounds[1] is not None else None


def custom_filters(state: ContactList) -> list[type[CustomValueFilter]]:
    """A filter per filterable custom field of the list's org (the first MAX_CUSTOM_FILTERS)."""
    filtered = [d for d in state.definitions.values() if d.data_type in FILTERED_TYPES][:MAX_CUSTOM_FILTERS]
    return [
        type(
            f"CustomValueFilter_{d.key}",
            (NumberRangeFilter if d.data_type == "number" else CustomValueFilter,),
            {"title": d.name, "parameter_name": CUSTOM + d.key, "definition": d},
        )
        for d in filtered
    ]


LIST_FILTERS = [OrgFilter, SavedViewFilter, TagFilter, AssigneeFilter, DncFilter, SourceFilter]


class ContactChangeList(ChangeList):
    """The list's tags and custom values read in one query per page; `columns` is not a filter;
    a saved view's sort applies unless a column header was clicked."""

    def get_filters_params(self, params=None):
        """The filters' parameters; `columns` is none, and any other one no filter takes (a
        misspelled or stale filter, a raw field lookup) is set aside to be named, not applied."""
        lookup = super().get_filters_params(params)
        lookup.pop(COLUMNS, None)
        known = {getattr(list_filter, "parameter_name", None) for list_filter in self.list_filter}
        self.unknown_params = sorted(key for key in lookup if key not in known)
        for key in self.unknown_params:
            del lookup[key]
        return lookup

    def get_queryset(self, request, exclude_parameters=None):
        """Nothing is listed while a parameter no filter takes is in the URL: a filter that does not
        apply must never look as if it worked (Django would answer a database error page)."""
        rows = super().get_queryset(request, exclude_parameters)
        if self.unknown_params:
            names = ", ".join(f"“{name}”" for name in self.unknown_params)
            contact_list(request).problems.append(f"No filter takes {names}: remove it to see the list.")
            return rows.none()
        return rows

    def get_ordering(self, request, queryset):
        plan = contact_list(request).view_plan
        if plan is not None and ORDER_VAR not in self.params:
            return list(plan.sort.order_by)
        return super().get_ordering(request, queryset)

    def get_results(self, request):
        super().get_results(request)
        self.result_list = attach_tags_and_custom(list(self.result_list))
