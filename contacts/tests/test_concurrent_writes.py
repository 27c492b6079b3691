"""Concurrent writes compose (DESIGN §2): a write changes only what it names, so two writers racing
on one contact both keep their change. Real threads, each with its own database connection,
through the API, started together by a barrier; every pair runs several rounds."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from contacts.models import Contact, ContactTag
from contacts.testing import make_contact
from customization.models import CustomField, Tag

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROUNDS = 8


def client_of(actor) -> APIClient:
    client = APIClient()  # one per thread: its requests run on that thread's database connection
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {actor.token}", HTTP_X_ORG_ID=str(actor.org.id))
    return client


def race(actor, *requests):
    """Send `requests` ((method, url, body) each) at the same moment; their responses, in order."""
    barrier = threading.Barrier(len(requests))
    responses = [None] * len(requests)

    def send(index, method, url, body):
        client = client_of(actor)
        try:
            barrier.wait(timeout=30)
            responses[index] = getattr(client, method)(url, body, format="json")
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i, *request)) for i, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(r is not None for r in responses), "a request did not finish"
    return responses


def fresh(contact) -> Contact:
    return Contact.objects.get(pk=contact.pk)


def url(contact, suffix=""):
    return f"/api/v1/contacts/{contact.pk}{suffix}"


def test_two_patches_of_different_fields_keep_both(alice):
    contact = make_contact(alice.org, name="Ada Lovelace", company="Start")
    for r in range(ROUNDS):
        first, second = race(
            alice, ("patch", url(contact), {"name": f"Name{r} Person"}), ("patch", url(contact), {"company": f"Co{r}"})
        )
        assert (first.status_code, second.status_code) == (200, 200)
        after = fresh(contact)
        assert (after.name, after.company) == (f"Name{r} Person", f"Co{r}")
        # what is derived from both (the q haystack) was computed from the row as both left it
        assert f"name{r} person" in after.search_text and f"co{r}" in after.search_text


def test_a_patch_and_a_tag_add_keep_both(alice):
    contact = make_contact(alice.org, name="Ada", tags=["first"])
    for r in range(ROUNDS):
        patched, tagged = race(
            alice, ("patch", url(contact), {"company": f"Co{r}"}), ("post", url(contact, "/tags"), {"tags": [f"t{r}"]})
        )
        assert (patched.status_code, tagged.status_code) == (200, 200)
        assert f"t{r}" in tagged.json()["tags"]
        after = fresh(contact)
        assert after.company == f"Co{r}" and f"t{r}" in after.tags and "first" in after.tags


def test_a_patch_and_a_custom_value_keep_both(alice):
    for key in ("a", "b"):
        CustomField.objects.create(org=alice.org, key=key, name=key, data_type="number")
    contact = make_contact(alice.org, name="Ada")
    for r in range(ROUNDS):
        patched, put = race(
            alice,
            ("patch", url(contact), {"company": f"Co{r}", "custom": {"a": r}}),
            ("put", url(contact, "/custom/b"), {"value": r * 10}),
        )
        assert (patched.status_code, put.status_code) == (200, 200)
        after = fresh(contact)
        assert after.company == f"Co{r}" and after.custom == {"a": r, "b": r * 10}


def test_a_tag_rename_and_a_patch_keep_both(alice):
    contact = make_contact(alice.org, name="Ada", tags=["old0"])
    for r in range(ROUNDS):
        tag = Tag.objects.get(org=alice.org, name=f"old{r}")
        renamed, patched = race(
            alice,
            ("patch", f"/api/v1/tags/{tag.pk}", {"name": f"old{r + 1}"}),
            ("patch", url(contact), {"company": f"Co{r}"}),
        )
        assert (renamed.status_code, patched.status_code) == (200, 200)
        after = fresh(contact)
        assert after.tags == [f"old{r + 1}"] and after.company == f"Co{r}"


def test_a_field_delete_and_a_patch_keep_both_and_never_fail(alice):
    contact = make_contact(alice.org, name="Ada")
    for r in range(ROUNDS):
        field = CustomField.objects.create(org=alice.org, key=f"f{r}", name=f"F{r}", data_type="text")
        other = CustomField.objects.create(org=alice.org, key=f"g{r}", name=f"G{r}", data_type="text")
        deleted, patched = race(
            alice,
            ("delete", f"/api/v1/custom-fields/{field.pk}", None),
            ("patch", url(contact), {"company": f"Co{r}", "custom": {f"g{r}": "kept"}}),
        )
        assert (deleted.status_code, patched.status_code) == (204, 200)
        after = fresh(contact)
        assert after.company == f"Co{r}" and after.custom[other.key] == "kept" and field.key not in after.custom


def test_a_field_delete_racing_a_write_of_that_field_leaves_no_value_and_no_500(alice):
    contact = make_contact(alice.org, name="Ada")
    for r in range(ROUNDS):
        field = CustomField.objects.create(org=alice.org, key=f"f{r}", name=f"F{r}", data_type="text")
        deleted, written = race(
            alice,
            ("delete", f"/api/v1/custom-fields/{field.pk}", None),
            ("put", url(contact, f"/custom/f{r}"), {"value": "x"}),
        )
        assert deleted.status_code == 204
        assert written.status_code in (200, 404, 409), written.json()  # before, after, or during the delete
        assert f"f{r}" not in fresh(contact).custom


def test_a_tag_rename_during_an_import_that_adds_it_leaves_every_tag_in_the_catalog(alice):
    for r in range(3):
        tag = Tag.objects.create(org=alice.org, name=f"p{r}")
        rows = [{"email": f"r{r}-{i}@example.com", "tags": [f"p{r}"]} for i in range(300)]
        imported, renamed = race(
            alice,
            ("post", "/api/v1/contacts/import", {"contacts": rows}),
            ("patch", f"/api/v1/tags/{tag.pk}", {"name": f"q{r}"}),
        )
        assert (imported.status_code, renamed.status_code) == (200, 200)
        assert imported.json()["created"] == 300
        links = ContactTag.objects.filter(org_id=alice.org.id, contact__email__startswith=f"r{r}-")
        names = list(links.values_list("tag__name", flat=True))
        # each contact got the tag once: renamed with it, or (imported after the rename) a new p{r}
        assert len(names) == 300 and set(names) <= {f"p{r}", f"q{r}"}
        assert set(names) <= set(Tag.objects.for_org(alice.org.id).values_list("name", flat=True))


def test_a_bulk_action_and_patches_of_its_contacts_keep_both(alice, monkeypatch):
    """A bulk job (setting a field, a custom value and a tag, in chunks) runs on its own thread and
    connection while other threads PATCH, tag and set custom values of the same contacts."""
    from contacts import bulk
    from jobs import runner
    from jobs.models import Job

    monkeypatch.setattr(bulk, "CHUNK_CONTACTS", 5)
    CustomField.objects.create(org=alice.org, key="tier", name="Tier", data_type="text")
    CustomField.objects.create(org=alice.org, key="plan", name="Plan", data_type="text")
    people = [make_contact(alice.org, name=f"P{i}", company="Start", tags=["first"]) for i in range(30)]

    def run_jobs(barrier, job_ids):
        try:
            barrier.wait(timeout=30)
            for job_id in job_ids:
                runner.run(alice.org.id, job_id)
        finally:
            connection.close()

    def edit(barrier, responses, contacts, r):
        client = client_of(alice)
        try:
            barrier.wait(timeout=30)
            for person in contacts:
                responses.append(client.patch(url(person), {"name": f"Renamed{r}"}, format="json"))
                responses.append(client.post(url(person, "/tags"), {"tags": [f"own{r}"]}, format="json"))
                responses.append(client.put(url(person, "/custom/plan"), {"value": f"P{r}"}, format="json"))
        finally:
            connection.close()

    for r in range(3):
        bodies = [
            {"expected_count": 30, "action": {"set": {"company": f"Bulk{r}", "custom.tier": f"T{r}"}}},
            {"expected_count": 30, "action": {"add_tags": [f"bulk{r}"]}},
        ]
        job_ids = [
            client_of(alice).post("/api/v1/contacts/bulk", body, format="json").json()["job"]["id"] for body in bodies
        ]
        barrier, responses = threading.Barrier(3), []
        threads = [
            threading.Thread(target=run_jobs, args=(barrier, job_ids)),
            threading.Thread(target=edit, args=(barrier, responses, people[:15], r)),
            threading.Thread(target=edit, args=(barrier, responses, people[15:], r)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert [response.status_code for response in responses] == [200] * 90, [r.content for r in responses]
        assert set(Job.objects.filter(pk__in=job_ids).values_list("status", flat=True)) == {"succeeded"}
        for person in people:
            after = fresh(person)
            assert (after.name, after.company) == (f"Renamed{r}", f"Bulk{r}")
            assert after.custom == {"tier": f"T{r}", "plan": f"P{r}"}
            assert {"first", f"bulk{r}", f"own{r}"} <= set(after.tags)
