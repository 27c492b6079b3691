"""Detail lookups reuse the ORM's compiled statement (crm.api.detail), per model, scope and role."""

import pytest

from contacts.api.serializers import ContactSerializer
from contacts.models import Contact, Opportunity
from crm.api import viewsets
from crm.api.detail import DetailStatement

pytestmark = pytest.mark.django_db

URL = "/api/v1/contacts"


@pytest.fixture(autouse=True)
def _no_statements_yet():
    viewsets._DETAIL_STATEMENTS.clear()
    yield
    viewsets._DETAIL_STATEMENTS.clear()


@pytest.fixture
def two_contacts(alice, carol):
    body = {"name": "Ada", "tags": ["vip"], "custom": {}, "email": "ada@a.test", "phone": "+1 415 555 2671"}
    mine = alice.client.post(URL, {**body, "assigned_to": carol.user.id}, format="json").json()
    other = alice.client.post(URL, {"name": "Grace", "email": "grace@a.test"}, format="json").json()
    return mine["id"], other["id"]


def test_the_second_lookup_reuses_the_statement_and_answers_the_same(alice, two_contacts, monkeypatch):
    contact_id, _ = two_contacts
    first = alice.client.get(f"{URL}/{contact_id}")

    def no_compiling(*args, **kwargs):
        raise AssertionError("compiled again")

    monkeypatch.setattr(DetailStatement, "compile", no_compiling)
    second = alice.client.get(f"{URL}/{contact_id}")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == dict(ContactSerializer(Contact.objects.get(pk=contact_id)).data)
    assert second.json()["tags"] == ["vip"] and second.json()["created_at"]


def test_each_scope_has_its_own_statement(alice, bob, carol, charlie, two_contacts):
    assigned, unassigned = two_contacts
    for actor in (alice, bob, carol, charlie):  # every statement compiled, then every one reused
        for _ in range(2):
            assert actor.client.get(f"{URL}/{assigned}").status_code == (404 if actor is charlie else 200)
            assert actor.client.get(f"{URL}/{unassigned}").status_code == (404 if actor in (carol, charlie) else 200)
    scopes = {(key[2], key[3]) for key in viewsets._DETAIL_STATEMENTS}
    assert scopes == {(False, "owner"), (False, "member"), (True, "member")}


def test_updates_and_deletes_go_through_the_same_lookup(alice, carol, two_contacts):
    assigned, unassigned = two_contacts
    assert carol.client.get(f"{URL}/{assigned}").status_code == 200
    assert carol.client.patch(f"{URL}/{unassigned}", {"name": "Pwned"}, format="json").status_code == 404
    assert carol.client.delete(f"{URL}/{unassigned}").status_code == 404
    assert carol.client.patch(f"{URL}/{assigned}", {"name": "Ada L"}, format="json").json()["name"] == "Ada L"
    assert Contact.objects.get(pk=unassigned).name == "Grace"


@pytest.mark.parametrize("raw", ["abc", "1.5", "99999999999999999999999"])
def test_ids_that_are_not_a_contact_are_404(alice, two_contacts, raw):
    alice.client.get(f"{URL}/{two_contacts[0]}")
    assert alice.client.get(f"{URL}/{raw}").status_code == 404


def test_equal_values_are_not_compiled_into_a_statement(alice):
    """If the org id and the pk are equal, the placeholders cannot be told apart: no reuse."""
    queryset = Contact.objects.for_member(alice.membership).filter(pk=alice.org.id)
    assert DetailStatement.compile(queryset, {"org": alice.org.id, "user": alice.user.id, "pk": alice.org.id}) is None


def test_a_statement_with_joined_columns_is_not_reused(alice):
    queryset = Opportunity.objects.for_member(alice.membership).select_related("contact").filter(pk=10**9)
    assert DetailStatement.compile(queryset, {"org": alice.org.id, "user": alice.user.id, "pk": 10**9}) is None
