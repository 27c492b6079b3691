import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_org_endpoint_shows_org_role_and_scope(carol):
    body = carol.client.get("/api/v1/org").json()
    assert body["id"] == carol.org.id
    assert body["name"] == "Org A"
    assert body["timezone"] == "UTC" and body["default_region"] == "US"
    assert (body["role"], body["data_scope"]) == ("member", "assigned")


def test_missing_org_header_is_400(alice):
    alice.client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.token}")
    response = alice.client.get("/api/v1/org")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "code": "missing_org_header",
        "detail": "The X-Org-Id header is required.",
        "attr": "X-Org-Id",
    }


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "١٢", "9" * 40, " "])
def test_malformed_org_header_is_400(alice, value):
    alice.client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.token}", HTTP_X_ORG_ID=value)
    response = alice.client.get("/api/v1/org")
    assert response.status_code == 400


def test_unknown_org_and_foreign_org_get_the_same_403(alice, charlie):
    alice.client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.token}", HTTP_X_ORG_ID="999999")
    unknown = alice.client.get("/api/v1/org")
    alice.client.credentials(HTTP_AUTHORIZATION=f"Bearer {alice.token}", HTTP_X_ORG_ID=str(charlie.org.id))
    foreign = alice.client.get("/api/v1/org")
    assert unknown.status_code == foreign.status_code == 403
    assert unknown.json() == foreign.json()


def test_body_over_the_cap_is_413(alice):
    with override_settings(API_MAX_BODY_BYTES=100):
        response = alice.client.post("/api/v1/auth/token", {"email": "x" * 200}, format="json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert "at most 100 bytes" in response.json()["detail"]


def test_unknown_api_path_is_a_problem_404(alice):
    response = alice.client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
