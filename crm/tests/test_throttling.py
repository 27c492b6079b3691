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


def test_concurrent_requests_of_one_token_all_count(tight_limits):
    """Twenty requests of one token at once against a limit of three: exactly three pass."""
    import threading
    from types import SimpleNamespace

    from django.core.cache import cache

    from crm.api.throttling import TokenRateThrottle

    cache.clear()
    start = threading.Barrier(20)
    answers = []

    def one_request():
        request = SimpleNamespace(auth=SimpleNamespace(token_key="concurrent1"), META={})
        start.wait()
        answers.append(TokenRateThrottle().allow_request(request, None))

    threads = [threading.Thread(target=one_request) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [False] * 17 + [True] * 3


@pytest.fixture
def rates(settings):
    def set_rates(**overrides):
        merged = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **overrides}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": merged}

    yield set_rates
    api_settings.reload()


def test_a_clients_x_forwarded_for_does_not_pick_its_password_bucket(anon, rates):
    rates(auth="3/min", auth_account="100/min")
    statuses = [
        anon.post(
            "/api/v1/auth/token",
            {"email": f"u{n}@y.test", "password": "nope"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"10.0.{n}.1",
        ).status_code
        for n in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]


def test_password_attempts_are_limited_per_account_from_any_address(anon, rates):
    rates(auth="100/min", auth_account="3/min")
    statuses = [
        anon.post(
            "/api/v1/auth/token",
            {"email": " Victim@Y.test" if n % 2 else "victim@y.test", "password": "nope"},
            format="json",
            REMOTE_ADDR=f"10.1.{n}.1",
        ).status_code
        for n in range(5)
    ]
    assert statuses == [401, 401, 401, 429, 429]
    # Another account from the same addresses is not held back.
    other = anon.post("/api/v1/auth/token", {"email": "other@y.test", "password": "nope"}, format="json")
    assert other.status_code == 401


def test_search_has_its_own_bucket_on_top_of_the_api_one(alice, rates):
    rates(search="2/min", api="100/min")
    statuses = [alice.client.post("/api/v1/contacts/search", {}, format="json").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert alice.client.get("/api/v1/contacts").status_code == 200


def test_import_has_its_own_bucket(alice, rates):
    rates(**{"import": "2/min", "api": "100/min"})
    body = {"contacts": [{"name": "Ada"}], "options": {"dry_run": True}}
    statuses = [alice.client.post("/api/v1/contacts/import", body, format="json").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert alice.client.get("/api/v1/contacts").status_code == 200


def test_every_answer_carries_ratelimit_headers(alice, rates):
    rates(api="5/min", search="3/min")
    first = alice.client.get("/api/v1/contacts")
    assert first["RateLimit-Policy"] == '"api";q=5;w=60'
    assert first["RateLimit"].startswith('"api";r=4;t=')
    search = alice.client.post("/api/v1/contacts/search", {}, format="json")
    assert search["RateLimit-Policy"] == '"api";q=5;w=60, "search";q=3;w=60'
    assert search["RateLimit"].split(", ")[1].startswith('"search";r=2;')
    for _ in range(3):
        alice.client.get("/api/v1/contacts")
    refused = alice.client.get("/api/v1/contacts")
    assert refused.status_code == 429
    assert refused["RateLimit"].startswith('"api";r=0;t=')
    reset = int(refused["RateLimit"].split("t=")[1])
    assert 1 <= reset <= 60


def test_error_answers_carry_ratelimit_headers_too(alice, rates):
    rates(api="5/min")
    missing = alice.client.get("/api/v1/contacts/999999999")
    assert missing.status_code == 404
    assert missing["RateLimit"].startswith('"api";r=4;')
