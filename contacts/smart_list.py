"""Which contacts an export or a bulk action acts on (DESIGN §4 "Actions on a smart list"): a
`query`, a saved `view` or `ids`, narrowed by `q`, always within the caller's scope.

A saved view is read when the request arrives (its query and `q` are what the caller saw); the
contacts are selected when the work runs: an export's stream, a bulk action's job as it starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from contacts.models import Contact, SmartListView
from contacts.search import SearchCompiler
from crm.errors import FieldError

SOURCES = ("query", "view", "ids")
MAX_IDS = 10_000


@dataclass(frozen=True)
class SmartList:
    query: dict | None = None
    q: str = ""
    ids: list[int] | None = None
    view_id: int | None = None  # the saved view it came from, if any
    view_columns: list[str] | None = None  # that view's columns (an export's default)

    @classmethod
    def from_request(cls, given: dict, membership, errors: list[FieldError]) -> SmartList:
        """From a validated body (`query` | `view` | `ids`, `q`); errors name what is wrong. The
        query itself is checked by `contacts` (raises InvalidInput)."""
        sources = [key for key in SOURCES if key in given]
        if len(sources) > 1:
            errors.append(FieldError(sources[1], "conflict", "Give at most one of `query`, `view` and `ids`."))
        q = given.get("q") or ""
        if "view" in given:
            view = SmartListView.objects.for_member(membership).filter(pk=given["view"]).first()
            if view is None:
                errors.append(FieldError("view", "not_found", "No saved view with this id."))
                return cls(q=q)
            return cls(view.query, q or view.q, None, view.pk, view.columns or None)
        return cls(given.get("query"), q, given.get("ids"))

    @classmethod
    def from_params(cls, params: dict) -> SmartList:
        return cls(params.get("query"), params.get("q", ""), params.get("ids"), params.get("view"))

    def as_params(self) -> dict:
        return {"query": self.query, "q": self.q, "ids": self.ids, "view": self.view_id}

    def contacts(self, org, membership=None):
        """The matching contacts of `org` the member may see (no member: staff, the whole org),
        unordered; InvalidInput for a bad query (a field deleted since it was saved)."""
        rows = Contact.objects.for_org(org.id) if membership is None else Contact.objects.for_member(membership)
        if self.ids is not None:
            rows = rows.filter(pk__in=self.ids)
        plan = SearchCompiler.for_org(org).compile_request({"query": self.query, "q": self.q})
        return plan.filter(rows)
