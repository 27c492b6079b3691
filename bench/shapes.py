"""The list/search shapes of DESIGN §5, written against the documented API (§3, §4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench import data

SEARCH_PATH = "/api/v1/contacts/search"
LIST_PATH = "/api/v1/contacts"
DEEP_ROWS = 100_000  # page 2,000 of 50


def cond(field_name: str, op: str, value=None) -> dict:
    c = {"field": field_name, "op": op}
    if value is not None:
        c["value"] = value
    return c


def one_group(*conditions) -> dict:
    return {"groups": [{"conditions": list(conditions)}]}


@dataclass
class Shape:
    name: str
    actor: str = "owner"  # "owner" | "assigned"
    search: dict | None = None  # POST /contacts/search body (without limit/count)
    get: dict | None = None  # GET /contacts query params, for the shapes GET can express
    endpoint: str = "search"  # "search" | "get" | "deep"
    targeted: bool = True  # counts against the p50 target
    count_sql: str | None = None  # the filter as plain SQL, for the count(*) comparison
    results: dict = field(default_factory=dict)
    request: Any = None  # the measure.Request this run built for it (a deep page's cursor included)


def tag_sql(tag_id: int) -> str:
    """Plain SQL: the contact carries the tag (contacts_contacttag, by the tag's catalog id)."""
    return ("EXISTS (SELECT 1 FROM contacts_contacttag ct WHERE ct.org_id = contacts_contact.org_id "
            f"AND ct.contact_id = contacts_contact.id AND ct.tag_id = {int(tag_id)})")  # fmt: skip


def value_sql(field_id: int, condition: str) -> str:
    """Plain SQL: the contact has a value of the field meeting `condition` (contacts_fieldvalue's typed columns)."""
    return ("EXISTS (SELECT 1 FROM contacts_fieldvalue fv WHERE fv.org_id = contacts_contact.org_id "
            f"AND fv.contact_id = contacts_contact.id AND fv.field_id = {int(field_id)} AND {condition})")  # fmt: skip


def build_shapes(samples: dict, ids: dict) -> list[Shape]:
    """`ids`: the main org's catalog ids, looked up at run time (seed.lookup_ids), for the plain-SQL counts."""
    ext = samples["external_id"]
    q_sel = samples["q_selective"]
    tag = data.COMMON_TAG
    tag_ids, field_ids = ids["tag_ids"], ids["field_ids"]
    shapes = [
        Shape("no filter", search={"query": {"groups": []}}, count_sql="TRUE"),
        Shape("common tag", search={"query": one_group(cond("tags", "contains", tag))},
              count_sql=tag_sql(tag_ids[tag])),
        Shape("rare tag", search={"query": one_group(cond("tags", "contains", data.RARE_TAG))}),
        Shape("rare tag, only on old contacts", search={"query": one_group(cond("tags", "contains", data.OLD_TAG))}),
        Shape("custom value held by one contact",
              search={"query": one_group(cond("custom.external_id", "eq", ext))}),
        Shape("custom number range, common",
              search={"query": one_group(cond("custom.deal_size", "between", [500, 5000]))},
              count_sql=value_sql(field_ids["deal_size"], "fv.number BETWEEN 500 AND 5000")),
        Shape("custom number range, rare",
              search={"query": one_group(cond("custom.deal_size", "gte", 100000))}),
        Shape("custom date range, common",
              search={"query": one_group(cond("custom.renewal_on", "between", ["2024-01-01", "2026-12-31"]))},
              count_sql=value_sql(field_ids["renewal_on"], "fv.day BETWEEN '2024-01-01' AND '2026-12-31'")),
        Shape("custom date range, rare",
              search={"query": one_group(cond("custom.renewal_on", "between", ["2022-03-01", "2022-03-01"]))}),
        Shape("custom datetime, within last 30 days",
              search={"query": one_group(cond("custom.last_seen_at", "within_last", {"amount": 30, "unit": "days"}))}),
        Shape("q selective", search={"query": {"groups": []}, "q": q_sel}),
        Shape("q common", search={"query": {"groups": []}, "q": "son"}, count_sql="search_text LIKE '%son%'"),
        Shape("q no match", search={"query": {"groups": []}, "q": "zqxwv"}),
        Shape("OR of AND groups", search={"query": {"groups": [
            {"conditions": [cond("tags", "contains", "customer"), cond("custom.plan", "eq", "Enterprise")]},
            {"conditions": [cond("custom.deal_size", "gt", 50000), cond("dnc", "eq", False)]},
            {"conditions": [cond("company", "starts_with", "Wonka"), cond("tags", "contains_any", ["vip", "hot"])]},
        ]}}),
        Shape("assigned-only: no filter", actor="assigned", search={"query": {"groups": []}}),
        Shape("assigned-only: common tag", actor="assigned",
              search={"query": one_group(cond("tags", "contains", tag))}),
        Shape("assigned-only: rare tag on old contacts", actor="assigned",
              search={"query": one_group(cond("tags", "contains", data.OLD_TAG))}),
        Shape("assigned-only: q common", actor="assigned", search={"query": {"groups": []}, "q": "son"}),
        Shape("assigned-only: custom number range", actor="assigned",
              search={"query": one_group(cond("custom.deal_size", "between", [500, 5000]))}),
        Shape("GET /contacts: no filter", endpoint="get", get={}),
        Shape("GET /contacts: common tag", endpoint="get", get={"tag": tag}),
        Shape("GET /contacts: rare tag on old contacts", endpoint="get", get={"tag": data.OLD_TAG}),
        Shape("GET /contacts: q selective", endpoint="get", get={"q": q_sel}),
        Shape("GET /contacts: q no match", endpoint="get", get={"q": "zqxwv"}),
        Shape("page 2,000 deep (keyset cursor)", endpoint="deep"),
        Shape("page 2,000 deep (OFFSET, for comparison)", endpoint="get",
              get={"offset": str(DEEP_ROWS)}, targeted=False),
    ]  # fmt: skip
    return shapes
