import pytest
from rest_framework.settings import api_settings

pytestmark = pytest.mark.django_db


@pytest.fixture
def tight_limits(settings):
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "api": "3/min", "auth": "2/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    yield
    api_settings.reload()


def test_per_token_limit_answers_429_with_retry_after(alice, bob, tight_limits):
    statuses = [alice.client.get("/api/v1/contacts").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = alice.client.get("/api/v1/contacts")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert response["Content-Type"] == "application/problem+json"
    # Another token has its own bucket.
    assert bob.client.get("/api/v1/contacts").status_code == 200


def test_password_attempts_are_limited(anon, tight_limits):
    body = {"email": "x@y.test", "password": "nope"}
    statuses = [anon.post("/api/v1/auth/token", body, format="json").status_code for _ in range(3)]
    assert statuses == [401, 401, 429]


def test_the_request_log_is_stored_as_an_array_of_times(alice):
    """Pickled into the cache on every request: an array of doubles, not a list of floats."""
    from array import array

    from django.core.cache import cache

    for _ in range(3):
        assert alice.client.get("/api/v1/org").status_code == 200
    token_key = alice.token[:15]
    history = cache.get(f"throttle_api_token:{token_key}")
    assert isinstance(history, array) and history.typecode == "d" and len(history) == 3
    assert list(history) == sorted(history, reverse=True)
