"""One org never waits for another (DESIGN §2): nothing an org does takes a lock that makes another
org's reads or writes wait. No timing: a bystander's statements run with a short lock_timeout,
which fails them outright if they had to queue behind a lock."""

import threading

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from contacts.testing import make_contact
from orgs.tests.factories import OrganizationFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def connect() -> psycopg.Connection:
    params = {**connection.get_connection_params()}
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    return psycopg.connect(**params)


def as_org(conn: psycopg.Connection, org_id: int) -> None:
    """The connection's transaction becomes a request of `org_id` (role and org, as the service sets them)."""
    conn.execute("SELECT set_config('role', %s, true), set_config('app.org_id', %s, true)",
                 [settings.RLS_APP_ROLE, str(org_id)])  # fmt: skip


def test_schema_and_catalog_changes_of_one_org_never_make_another_org_wait(alice, charlie):
    busy = make_contact(charlie.org, name="Busy")
    bystander_org = OrganizationFactory(name="Bystander")
    bystander = make_contact(bystander_org, name="Bystander")

    # Org B holds a long transaction on the contacts table (an import, a count, an export…).
    holder = connect()
    as_org(holder, charlie.org.id)
    holder.execute("UPDATE contacts_contact SET company = 'held' WHERE id = %s", [busy.pk])

    # Meanwhile org A changes its catalog (fields of every type, a tag) and the data that uses it.
    done = threading.Event()

    def change_catalog():
        try:
            for data_type in ("text", "number", "date", "datetime", "single_select"):
                body = {"name": f"F {data_type}", "data_type": data_type}
                if data_type == "single_select":
                    body["options"] = ["a", "b"]
                field = alice.client.post("/api/v1/custom-fields", body, format="json").json()
                alice.client.delete(f"/api/v1/custom-fields/{field['id']}")
            tag = alice.client.post("/api/v1/tags", {"name": "temp"}, format="json").json()
            alice.client.patch(f"/api/v1/tags/{tag['id']}", {"name": "temp2"}, format="json")
            alice.client.delete(f"/api/v1/tags/{tag['id']}")
            done.set()
        finally:
            connection.close()

    worker = threading.Thread(target=change_catalog)
    worker.start()
    worker.join(timeout=20)
    try:
        assert done.is_set(), "org A's catalog changes waited for org B's transaction"
        # A third org reads and writes its contacts without queueing behind anything.
        with connect() as other:
            as_org(other, bystander_org.id)
            other.execute("SET lock_timeout = '500ms'")
            assert other.execute("SELECT name FROM contacts_contact WHERE id = %s", [bystander.pk]).fetchone()
            other.execute("UPDATE contacts_contact SET company = 'fine' WHERE id = %s", [bystander.pk])
            other.execute("INSERT INTO contacts_contact (org_id, first_name, last_name, name, company, source, notes,"
                          " dnc, folded, search_text, created_at, updated_at) VALUES (%s, '', '', 'New', '', '', '',"
                          " false, '{}', 'new', now(), now())", [bystander_org.id])  # fmt: skip
            other.commit()
    finally:
        holder.rollback()
        holder.close()
