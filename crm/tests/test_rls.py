"""Row-level security, the second wall: even with the application's scoping bypassed, the
database refuses to hand one org's rows to another."""

import pytest
from django.db import ProgrammingError, connection, transaction

from contacts.models import Contact
from contacts.testing import make_contact
from crm.db_security import as_org, rls_bypass
from customization.models import Tag

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_orgs(alice, charlie):
    a = alice.client.post(
        "/api/v1/contacts", {"name": "A secret", "email": "a@a.test", "tags": ["t"]}, format="json"
    ).json()
    b = charlie.client.post(
        "/api/v1/contacts", {"name": "B secret", "email": "b@b.test", "tags": ["t"]}, format="json"
    ).json()
    return a["id"], b["id"]


def tenant_tables():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped
            WHERE c.relkind = 'r'
            """
        )
        return cursor.fetchall()


def test_every_table_with_org_id_has_a_forced_policy():
    tables = tenant_tables()
    assert len(tables) >= 9, tables  # contacts, opportunities, views, tags, folders, fields, values, ...
    missing = [name for name, enabled, forced, policy in tables if not (enabled and forced and policy)]
    assert missing == []


@pytest.mark.parametrize("role", ["crm_app", "crm_bypass"])
def test_the_roles_own_nothing_and_have_no_bypassrls(role):
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolbypassrls, rolsuper, rolcanlogin FROM pg_roles WHERE rolname = %s", [role])
        assert cursor.fetchone() == (False, False, False)
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tableowner = %s", [role])
        assert cursor.fetchone() == (0,)


def test_the_tenant_policy_is_a_plain_org_match_for_the_app_role():
    """No OR in the app role's policy: it stays an index condition evaluated once per query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_expr(polqual, polrelid), polroles::regrole[]::text[] FROM pg_policy "
            "WHERE polrelid = 'contacts_contact'::regclass AND polname = 'tenant_isolation'"
        )
        qual, roles = cursor.fetchone()
    assert " OR " not in qual.upper() and roles == ["crm_app"]


def test_unscoped_queries_see_only_the_current_org(alice, two_orgs):
    a_id, b_id = two_orgs
    with as_org(alice.org.id):
        assert list(Contact.objects.values_list("id", flat=True)) == [a_id]
        assert Contact.objects.filter(pk=b_id).update(name="Pwned") == 0
        assert Contact.objects.filter(pk=b_id).delete()[0] == 0
        assert set(Tag.objects.values_list("org_id", flat=True)) == {alice.org.id}
    assert Contact.objects.get(pk=b_id).name == "B secret"


def test_writing_a_row_into_another_org_is_refused(alice, charlie):
    with pytest.raises(ProgrammingError, match="row-level security"), as_org(alice.org.id):
        make_contact(org_id=charlie.org.id, name="Planted")
    assert not Contact.objects.filter(name="Planted").exists()


def test_no_org_set_sees_nothing(two_orgs):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL ROLE crm_app")
        cursor.execute("SELECT count(*) FROM contacts_contact")
        assert cursor.fetchone() == (0,)
        with pytest.raises(ProgrammingError), transaction.atomic():
            cursor.execute(
                "INSERT INTO contacts_contact (org_id, first_name, last_name, name, company, source, "
                "notes, tags, dnc, custom, search_text, created_at, updated_at) VALUES "
                "(1, '', '', 'x', '', '', '', '{}', false, '{}', '', now(), now())"
            )
        cursor.execute("RESET ROLE")


def test_the_named_bypass_spans_orgs(two_orgs):
    with rls_bypass(), connection.cursor() as cursor:
        cursor.execute("SELECT current_user, count(*) FROM contacts_contact")
        assert cursor.fetchone() == ("crm_bypass", 2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user")
        assert cursor.fetchone() == (True,)


def test_api_request_with_app_scoping_bypassed_still_cannot_reach_another_org(alice, two_orgs, monkeypatch):
    """Break the application's wall on purpose: the database's wall still holds."""
    from contacts.models import ContactQuerySet

    monkeypatch.setattr(ContactQuerySet, "for_member", lambda self, membership: self.all())
    a_id, b_id = two_orgs
    assert alice.client.get(f"/api/v1/contacts/{b_id}").status_code == 404
    assert alice.client.patch(f"/api/v1/contacts/{b_id}", {"name": "Pwned"}, format="json").status_code == 404
    assert alice.client.delete(f"/api/v1/contacts/{b_id}").status_code == 404
    listed = alice.client.get("/api/v1/contacts").json()
    assert [c["id"] for c in listed["results"]] == [a_id]
    assert Contact.objects.get(pk=b_id).name == "B secret"


def test_a_request_leaves_no_role_or_org_behind(alice):
    alice.client.get("/api/v1/contacts")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user, current_setting('app.org_id', true)")
        assert cursor.fetchone() in ((True, ""), (True, None))


def test_unique_violation_inside_rls_is_still_a_409(alice):
    alice.client.post("/api/v1/contacts", {"email": "dup@a.test"}, format="json")
    response = alice.client.post("/api/v1/contacts", {"email": "dup@a.test"}, format="json")
    assert response.status_code == 409


def test_prepared_request_statements_reused_by_two_orgs_serve_each_only_its_own_rows(
    alice, charlie, two_orgs, monkeypatch
):
    """The role switch and the membership lookup are prepared once per connection and reused by every
    org's requests, past the point where PostgreSQL switches to a generic plan: the org is read
    from the request's setting at run time, never kept in a plan."""
    from contacts.models import ContactQuerySet

    monkeypatch.setattr(ContactQuerySet, "for_member", lambda self, membership: self.all())
    a_id, b_id = two_orgs
    for _ in range(8):
        assert alice.client.get(f"/api/v1/contacts/{a_id}").status_code == 200
        assert charlie.client.get(f"/api/v1/contacts/{a_id}").status_code == 404
        assert charlie.client.get(f"/api/v1/contacts/{b_id}").json()["name"] == "B secret"
        assert alice.client.get(f"/api/v1/contacts/{b_id}").status_code == 404
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%%FROM orgs_membership%%'")
        assert cursor.fetchone()[0] >= 1  # the requests above did run prepared


@pytest.mark.parametrize("org_set", [True, False])
def test_the_text_lookups_answer_for_the_org_of_the_transaction_only(alice, two_orgs, org_set):
    """`q`'s SECURITY DEFINER functions read every org's haystacks as their owner: they must
    still answer only for the org the request set (and nothing without one)."""
    a_id, _ = two_orgs
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL ROLE crm_app")
        if org_set:
            cursor.execute("SELECT set_config('app.org_id', %s, true)", [str(alice.org.id)])
        cursor.execute("SELECT crm_text_matches(%s::text[])", [["%secret%"]])
        assert [row[0] for row in cursor.fetchall()] == ([a_id] if org_set else [])
        cursor.execute("SELECT crm_text_match_count(%s::text[])", [["%secret%"]])
        assert cursor.fetchone() == ((1 if org_set else 0),)
