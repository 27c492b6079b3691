"""The cast every API test uses, per healthchecks' Alice/Bob/Charlie:

- alice: owner of org A          - bob: member of org A (sees all contacts)
- carol: member of org A with the assigned-only scope
- charlie: owner of org B, must see nothing of org A
"""

from dataclasses import dataclass

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from orgs.models import Membership
from orgs.tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytest_plugins = ["crm.tests.pytest_progress"]  # a test that runs long says so


@dataclass
class Actor:
    membership: Membership
    client: APIClient
    token: str

    @property
    def user(self):
        return self.membership.user

    @property
    def org(self):
        return self.membership.org


def make_actor(org, email, role=Membership.Role.MEMBER, scope=Membership.DataScope.ALL) -> Actor:
    membership = MembershipFactory(org=org, user=UserFactory(username=email), role=role, data_scope=scope)
    _, token = AuthToken.objects.create(user=membership.user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_ORG_ID=str(org.id))
    return Actor(membership, client, token)


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Throttle counters live in the cache; every test starts with full buckets."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def org_a(db):
    return OrganizationFactory(name="Org A")


@pytest.fixture
def org_b(db):
    return OrganizationFactory(name="Org B")


@pytest.fixture
def alice(org_a):
    return make_actor(org_a, "alice@a.test", Membership.Role.OWNER)


@pytest.fixture
def bob(org_a):
    return make_actor(org_a, "bob@a.test")


@pytest.fixture
def carol(org_a):
    return make_actor(org_a, "carol@a.test", scope=Membership.DataScope.ASSIGNED)


@pytest.fixture
def charlie(org_b):
    return make_actor(org_b, "charlie@b.test", Membership.Role.OWNER)


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def staff(db):
    """A logged-in superuser's client for the admin."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_superuser("root", "root@example.test", "pw-for-tests")
    client = Client()
    client.force_login(user)
    return client
