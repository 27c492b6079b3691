"""An integration written against the generated Python client, as an integrator would write it.

crm/tests/test_sdk.py generates `crm_sdk` from the live schema, type-checks this file and the client with
`mypy --strict` (0 errors: a response field the API always sends is typed as sent, `Contact.name: str`),
then runs it against a live server: `python sdk_client_script.py BASE_URL TOKEN ORG_ID`. It prints one
JSON line of what it saw, which the test checks.
"""

from __future__ import annotations

import io
import json
import sys
from typing import TypeVar

from crm_sdk import AuthenticatedClient
from crm_sdk.api.contacts import contacts_create, contacts_import_create, contacts_list, contacts_search_create
from crm_sdk.api.custom_fields import custom_fields_create
from crm_sdk.api.custom_values import custom_values_update
from crm_sdk.api.templates import templates_render_create
from crm_sdk.models import (
    ConditionRequest,
    Contact,
    ContactRequest,
    ContactsImportCreateReport,
    CustomField,
    CustomFieldRequest,
    CustomFieldValuesRequest,
    CustomValue,
    CustomValueWriteRequest,
    DataTypeEnum,
    DirectionEnum,
    GroupRequest,
    ImportResult,
    OpEnum,
    OutcomeEnum,
    PaginatedContactList,
    QueryRequest,
    RenderRequest,
    RenderResponse,
    SearchRequest,
    SearchResponse,
    SortRequest,
)
from crm_sdk.types import UNSET, File, Unset

T = TypeVar("T")

CSV = (
    "name,email,phone,company,tags,custom.score,custom.plan,custom.renewal\r\n"
    "Grace Hopper,grace@sdk.test,,Navy,lead;speaker,40,enterprise,2027-01-31\r\n"
    "Linus Torvalds,linus@sdk.test,,Kernel,lead,75,free,\r\n"
    "Margaret Hamilton,margaret@sdk.test,,NASA,,10.5,pro,2026-06-30\r\n"
    "Broken Row,not-an-email,,,,lots,,\r\n"
)


def expect(answer: object, kind: type[T]) -> T:
    """The typed answer, or stop with what came instead (a `Problem`, or None for an undocumented status)."""
    if not isinstance(answer, kind):
        raise SystemExit(f"expected {kind.__name__}, got {answer!r}")
    return answer


def create_fields(client: AuthenticatedClient, org: int) -> list[str]:
    fields = [
        CustomFieldRequest(name="Score", data_type=DataTypeEnum.NUMBER),
        CustomFieldRequest(name="Plan", data_type=DataTypeEnum.SINGLE_SELECT, options=["free", "pro", "enterprise"]),
        CustomFieldRequest(name="Renewal", data_type=DataTypeEnum.DATE),
    ]
    created = [expect(custom_fields_create.sync(client=client, x_org_id=org, body=f), CustomField) for f in fields]
    link = CustomValueWriteRequest(value="https://cal.example/ada")
    stored = expect(custom_values_update.sync("calendar_link", client=client, x_org_id=org, body=link), CustomValue)
    return [field.key for field in created] + [stored.key]


def create_ada(client: AuthenticatedClient, org: int) -> Contact:
    custom = CustomFieldValuesRequest()
    custom["score"] = 90
    custom["plan"] = "pro"
    body = ContactRequest(name="Ada Lovelace", email="Ada@SDK.test", tags=["VIP"], custom=custom)
    return expect(contacts_create.sync(client=client, x_org_id=org, body=body), Contact)


def import_csv(client: AuthenticatedClient, org: int) -> ImportResult:
    upload = File(payload=io.BytesIO(CSV.encode()), file_name="contacts.csv", mime_type="text/csv")
    answer = contacts_import_create.sync(
        client=client, x_org_id=org, body=upload, tags=["imported"], report=ContactsImportCreateReport.ROWS
    )
    return expect(answer, ImportResult)


def search_hot_leads(client: AuthenticatedClient, org: int) -> list[Contact]:
    """score ≥ 50, or plan = enterprise; best score first, two a page, following `next_cursor`."""
    query = QueryRequest(
        groups=[
            GroupRequest(conditions=[ConditionRequest(field="custom.score", op=OpEnum.GTE, value=50)]),
            GroupRequest(conditions=[ConditionRequest(field="custom.plan", op=OpEnum.EQ, value="enterprise")]),
        ]
    )
    sort = [SortRequest(field="custom.score", direction=DirectionEnum.DESC)]
    found: list[Contact] = []
    cursor: str | Unset = UNSET
    while True:
        body = SearchRequest(query=query, sort=sort, limit=2, cursor=cursor)
        page = expect(contacts_search_create.sync(client=client, x_org_id=org, body=body), SearchResponse)
        found += page.results
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def list_imported(client: AuthenticatedClient, org: int) -> tuple[int | None, list[list[str]]]:
    """GET /contacts?tag=imported in pages of two, by keyset cursor, until a page has no next one."""
    pages: list[list[str]] = []
    cursor: str | Unset = UNSET
    count: int | None = None
    while True:
        answer = contacts_list.sync(client=client, x_org_id=org, tag=["imported"], limit=2, cursor=cursor)
        page = expect(answer, PaginatedContactList)
        count = page.count
        pages.append([contact.name for contact in page.results])
        if not page.next_cursor:
            return count, pages
        cursor = page.next_cursor


def render_invite(client: AuthenticatedClient, org: int, contact: Contact) -> RenderResponse:
    template = "Hi {{contact.first_name}} ({{contact.custom.plan}}) of {{contact.company}}: "
    template += "{{custom_values.calendar_link}}"
    body = RenderRequest(template=template, contact_id=contact.id)
    return expect(templates_render_create.sync(client=client, x_org_id=org, body=body), RenderResponse)


def describe(contact: Contact) -> dict[str, object]:
    """Fields used as the types say they come: str, bool and list without checks; email and phone may be null."""
    score = contact.custom.additional_properties.get("score")  # a map: keys are the org's fields
    return {
        "name": contact.name.upper(),
        "first": contact.first_name,
        "email": contact.email.lower() if contact.email is not None else None,
        "tags": ",".join(sorted(contact.tags)),
        "dnc": contact.dnc,
        "score": score,
        "created_year": contact.created_at.year,
    }


def main(base_url: str, token: str, org: int) -> dict[str, object]:
    with AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True) as client:
        keys = create_fields(client, org)
        ada = create_ada(client, org)
        report = import_csv(client, org)
        outcomes = [] if isinstance(report.rows, Unset) else [row.outcome for row in report.rows]
        hot = search_hot_leads(client, org)
        count, pages = list_imported(client, org)
        rendered = render_invite(client, org, hot[0])
    return {
        "keys": keys,
        "ada": describe(ada),
        "import": {
            "created": report.created,
            "failed": report.failed,
            "errors": [f"{error.row}:{error.field or '-'}" for error in report.errors],
            "outcomes": [str(outcome) for outcome in outcomes],
            "failed_rows": [o == OutcomeEnum.FAILED for o in outcomes].count(True),
        },
        "hot": [describe(contact) for contact in hot],
        "imported": {"count": count, "pages": pages},
        "rendered": rendered.rendered,
        "missing": rendered.missing,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
