"""Fixtures shared by the contacts tests."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client


@pytest.fixture
def staff(db):
    """A logged-in superuser's client for the admin."""
    user = get_user_model().objects.create_superuser("root", "root@example.test", "pw-for-tests")
    client = Client()
    client.force_login(user)
    return client
