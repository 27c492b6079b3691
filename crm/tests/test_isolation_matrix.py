"""Isolation cases for every org-scoped route not already declared in contacts/tests/test_isolation.py.

`ISOLATION_CASES` is what the test below is parametrized with, and what the scoping guard
(crm/tests/test_scoping_guard.py) reads, so the declaration cannot drift from the tests.

Actors: charlie (owner of another org) and carol (member of org A with the assigned-only scope).
- Contact data (contacts, their tags/custom values/opportunities, search, render, import): both get
  404 or see nothing of the secret contact, which is not assigned to carol, and nothing changes.
- Jobs: a member sees their own only, so both get 404 for the owner's job (and see none).
- Org-wide catalogs (tags, custom fields and folders, custom values, views, field catalog, org):
  charlie sees nothing of org A (404, empty lists, 403 for org A's id); carol gets the role answer:
  reads succeed (catalogs are org-shared), admin-only writes are 403 and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.utils import timezone

from contacts.models import (
    Contact,
    ContactMerge,
    ContactTag,
    FieldValue,
    Opportunity,
    SmartListView,
    TrashedContact,
)
from contacts.testing import make_contact
from contacts.trash import move_to_trash
from customization.models import CustomField, CustomFieldFolder, CustomValue, Tag
from jobs.models import Job
from jobs.tests.helpers import run_jobs
from webhooks.models import Delivery, Webhook

pytestmark = pytest.mark.django_db

SECRET = "Secretsson"


@dataclass(frozen=True)
class Case:
    method: str
    url: str  # formatted with the ids of the `world` fixture
    body: dict | None
    status: int  # expected answer
    reveals_nothing: bool = True  # the body must not mention the secret contact
    starts_job: bool = False  # the actor's own job: run it, then nothing of org A may have changed

    def __str__(self):
        return f"{self.method.upper()} {self.url} -> {self.status}"


CONTACT_ONLY = {"contacts": [{"name": f"Pwned {SECRET}", "email": "secret@a.test"}]}

# Cases whose answer is the same for both: the secret contact is neither charlie's nor carol's to
# export or act on, and a member sees only their own jobs (the world's job is alice's).
BOTH = [
    Case("post", "/api/v1/contacts/export", {"q": SECRET.lower()}, 200),
    Case("get", "/api/v1/contacts/export", None, 200),
    Case("get", "/api/v1/jobs", None, 200),
    Case("get", "/api/v1/jobs/{job}", None, 404),
    Case("post", "/api/v1/jobs/{job}/cancel", None, 404),
    Case("post", "/api/v1/jobs/{job}/undo", None, 404),
    Case("get", "/api/v1/jobs/{job}/errors", None, 404),
    # The world is written in this test's transaction, which never commits: its feed stays empty.
    # What each actor sees of committed changes is tested in changes/tests/test_feed_api.py.
    Case("get", "/api/v1/changes", None, 200),
    Case("get", "/api/v1/contacts/{c}/history", None, 404),
    # A bulk action naming the secret contact selects nothing it may not see: its job fails on the count.
    Case("post", "/api/v1/contacts/bulk", {"ids": ["{c}"], "expected_count": 1, "action": {"add_tags": ["x"]}}, 202,
         starts_job=True),
    Case("post", "/api/v1/contacts/bulk", {"expected_count": 0, "action": {"set": {"company": "Pwned"}}}, 202,
         starts_job=True),
    # Duplicates: none among what they can see; dismissing the secret contact names it as not found.
    Case("get", "/api/v1/contacts/duplicates", None, 200),
    Case("post", "/api/v1/contacts/duplicates/dismiss", {"ids": ["{c}", 999999999]}, 422),
    # The trash and merges: the secret trashed contact and the owner's merge are nobody else's.
    Case("get", "/api/v1/contacts/trash", None, 200),
    Case("post", "/api/v1/contacts/{trashed}/restore", None, 404),
    Case("post", "/api/v1/contacts/{trashed}/restore", {"merge_into": "{c}"}, 404),
    Case("get", "/api/v1/contacts/{trashed}/history", None, 404),
    Case("post", "/api/v1/contacts/merge", {"into": "{c}", "from": ["{other}"]}, 404),
    Case("post", "/api/v1/contacts/merges/{merge}/undo", None, 404),
]  # fmt: skip
# For each actor, the cases it runs. Every route of the API that is org-scoped appears here for
# both actors or in contacts/tests/test_isolation.py ENDPOINTS (run for both).
ISOLATION_CASES: dict[str, list[Case]] = {
    "charlie": [
        Case("get", "/api/v1/org", None, 403, reveals_nothing=True),
        Case("get", "/api/v1/contacts", None, 200),
        Case("post", "/api/v1/contacts/search", {"q": SECRET.lower()}, 200),
        Case("get", "/api/v1/contacts/fields", None, 200),
        Case("get", "/api/v1/contacts/views", None, 200),
        Case("put", "/api/v1/contacts/views", {"views": []}, 200),
        Case("post", "/api/v1/contacts/import", CONTACT_ONLY, 200),
        Case("post", "/api/v1/templates/render", {"template": "{{contact.last_name}}", "contact_id": "{c}"}, 404),
        Case("post", "/api/v1/contacts/{c}/tags", {"tags": ["pwned"]}, 404),
        Case("delete", "/api/v1/contacts/{c}/tags/secret", None, 404),
        Case("put", "/api/v1/contacts/{c}/custom/plan", {"value": "pro"}, 404),
        Case("get", "/api/v1/opportunities", None, 200),
        Case("get", "/api/v1/tags", None, 200),
        Case("get", "/api/v1/tags/{tag}", None, 404),
        Case("patch", "/api/v1/tags/{tag}", {"name": "pwned"}, 404),
        Case("delete", "/api/v1/tags/{tag}", None, 404),
        Case("get", "/api/v1/custom-field-folders", None, 200),
        Case("patch", "/api/v1/custom-field-folders/{folder}", {"name": "pwned"}, 404),
        Case("delete", "/api/v1/custom-field-folders/{folder}", None, 404),
        Case("get", "/api/v1/custom-fields", None, 200),
        Case("get", "/api/v1/custom-fields/{field}", None, 404),
        Case("delete", "/api/v1/custom-fields/{field}", None, 404),
        Case("get", "/api/v1/custom-values", None, 200),
        Case("get", "/api/v1/custom-values/secret_link", None, 404),
        Case("delete", "/api/v1/custom-values/secret_link", None, 404),
        Case("delete", "/api/v1/contacts/trash/{trashed}", None, 404),
        # Webhooks: org A's are not charlie's to see, change or retry.
        Case("get", "/api/v1/webhooks", None, 200),
        Case("get", "/api/v1/webhooks/{webhook}", None, 404),
        Case("patch", "/api/v1/webhooks/{webhook}", {"active": False}, 404),
        Case("delete", "/api/v1/webhooks/{webhook}", None, 404),
        Case("get", "/api/v1/webhooks/{webhook}/deliveries", None, 404),
        Case("post", "/api/v1/webhooks/{webhook}/deliveries/{delivery}/retry", None, 404),
        *BOTH,
    ],
    "carol": [
        Case("get", "/api/v1/org", None, 200),
        Case("get", "/api/v1/contacts", None, 200),
        Case("post", "/api/v1/contacts/search", {"q": SECRET.lower()}, 200),
        Case("get", "/api/v1/contacts/fields", None, 200, reveals_nothing=False),
        Case("get", "/api/v1/contacts/views", None, 200, reveals_nothing=False),
        Case("post", "/api/v1/contacts/import", CONTACT_ONLY, 200),
        Case("post", "/api/v1/templates/render", {"template": "{{contact.last_name}}", "contact_id": "{c}"}, 404),
        Case("post", "/api/v1/contacts/{c}/tags", {"tags": ["pwned"]}, 404),
        Case("delete", "/api/v1/contacts/{c}/tags/secret", None, 404),
        Case("put", "/api/v1/contacts/{c}/custom/plan", {"value": "pro"}, 404),
        Case("get", "/api/v1/opportunities", None, 200),
        Case("get", "/api/v1/tags", None, 200, reveals_nothing=False),
        Case("patch", "/api/v1/tags/{tag}", {"name": "pwned"}, 403),
        Case("delete", "/api/v1/tags/{tag}", None, 403),
        Case("post", "/api/v1/custom-field-folders", {"name": "Pwned"}, 403),
        Case("patch", "/api/v1/custom-field-folders/{folder}", {"name": "pwned"}, 403),
        Case("delete", "/api/v1/custom-field-folders/{folder}", None, 403),
        Case("post", "/api/v1/custom-fields", {"name": "Pwned", "data_type": "text"}, 403),
        Case("patch", "/api/v1/custom-fields/{field}", {"name": "pwned"}, 403),
        Case("delete", "/api/v1/custom-fields/{field}", None, 403),
        Case("get", "/api/v1/custom-values", None, 200, reveals_nothing=False),
        Case("put", "/api/v1/custom-values/secret_link", {"value": "pwned"}, 403),
        Case("delete", "/api/v1/custom-values/secret_link", None, 403),
        Case("delete", "/api/v1/contacts/trash/{trashed}", None, 403),  # owner/admin only, before any lookup
        # Webhooks are owner/admin only, every route, before any lookup.
        Case("get", "/api/v1/webhooks", None, 403),
        Case("post", "/api/v1/webhooks", {"url": "https://93.184.215.14/pwned", "events": ["*"]}, 403),
        Case("get", "/api/v1/webhooks/{webhook}", None, 403),
        Case("patch", "/api/v1/webhooks/{webhook}", {"active": False}, 403),
        Case("delete", "/api/v1/webhooks/{webhook}", None, 403),
        Case("get", "/api/v1/webhooks/{webhook}/deliveries", None, 403),
        Case("post", "/api/v1/webhooks/{webhook}/deliveries/{delivery}/retry", None, 403),
        *BOTH,
    ],
}
PARAMS = [(who, case) for who, cases in ISOLATION_CASES.items() for case in cases]


@pytest.fixture
def world(alice):
    """Org A's catalog and one secret contact, assigned to nobody (so not to carol)."""
    org = alice.org
    folder = CustomFieldFolder.objects.create(org=org, name="Secret folder")
    field = CustomField.objects.create(
        org=org, key="plan", name="Plan", data_type="single_select", options=["free", "pro"], folder=folder
    )
    tag = Tag.objects.create(org=org, name="secret")
    CustomValue.objects.create(org=org, key="secret_link", value="https://secret.test")
    contact = make_contact(
        org=org, name=f"Sam {SECRET}", last_name=SECRET, email="secret@a.test", tags=["secret"], custom={"plan": "free"}
    )
    Opportunity.objects.create(org=org, contact=contact, name="Secret deal")
    SmartListView.objects.create(org=org, name="Secret view", query={"groups": []}, position=0)
    trashed = make_contact(org=org, name=f"Tom {SECRET}", last_name=SECRET, tags=["secret"])
    move_to_trash(org.id, [trashed.id], deleted_by=alice.user.pk)
    other = make_contact(org=org, name=f"Una {SECRET}", last_name=SECRET)
    merge = ContactMerge.objects.create(org=org, into_id=contact.id, from_ids=[trashed.id], created_by=alice.user)
    job = Job.objects.create(  # the owner's: a member sees only their own jobs
        org=org, kind=Job.Kind.IMPORT, status=Job.Status.SUCCEEDED, created_by=alice.user,
        result={"ignored_columns": [SECRET]}, finished_at=timezone.now(),
    )  # fmt: skip
    webhook = Webhook.objects.create(org=org, url=f"https://hooks.example.com/{SECRET}", events=["*"], secret="whsec_x")
    delivery = Delivery.objects.create(
        org=org, webhook=webhook, message_id="msg_x", first_seq=1, first_part=0, first_id=1, last_seq=1, last_part=2,
        last_id=0, entry_count=1, status=Delivery.Status.FAILED,
    )  # fmt: skip
    return {
        "c": contact.id, "tag": tag.id, "folder": folder.id, "field": field.id, "job": job.id,
        "trashed": trashed.id, "other": other.id, "merge": merge.id, "webhook": webhook.id, "delivery": delivery.id,
    }  # fmt: skip


def snapshot(org_id):
    models = (
        Contact,
        ContactTag,
        FieldValue,
        Opportunity,
        Tag,
        CustomField,
        CustomFieldFolder,
        CustomValue,
        SmartListView,
        Job,
        TrashedContact,
        ContactMerge,
        Webhook,
        Delivery,
    )
    return [list(model.objects.filter(org_id=org_id).values().order_by("pk")) for model in models]


def fill(value, ids):
    if isinstance(value, str) and value.startswith("{") and value.strip("{}") in ids:
        return ids[value.strip("{}")]
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    return value


@pytest.mark.parametrize(("who", "case"), PARAMS, ids=[f"{who}:{case}" for who, case in PARAMS])
def test_outsiders_get_the_isolation_answer_and_change_nothing(request, world, who, case):
    actor = request.getfixturevalue(who)
    if who == "charlie" and case.url == "/api/v1/org":
        actor.client.credentials(HTTP_AUTHORIZATION=f"Bearer {actor.token}", HTTP_X_ORG_ID=str(world_org_id(request)))
    before = snapshot(world_org_id(request))
    url = case.url.format(**world)
    call = getattr(actor.client, case.method)
    response = call(url, fill(case.body, world), format="json") if case.body is not None else call(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content  # an export streams
    assert response.status_code == case.status, body[:500]
    if case.reveals_nothing:
        assert SECRET.lower() not in body.decode().lower()
    if case.starts_job:
        assert run_jobs() == 1
        job = Job.objects.get(created_by=actor.user)
        assert (job.status, job.result["matched"]) == (
            (Job.Status.FAILED, 0) if case.body["expected_count"] else (Job.Status.SUCCEEDED, 0)
        )
        Job.objects.filter(pk=job.pk).delete()  # the actor's own job is all that may differ
    assert snapshot(world_org_id(request)) == before


def world_org_id(request):
    return request.getfixturevalue("alice").org.id
