import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(anon):
    response = anon.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    import json

    return json.loads(response.content)


def test_schema_is_public_and_valid_openapi(schema):
    validate(schema)


def test_every_org_operation_documents_the_org_header_and_errors(schema):
    exempt = {"/api/v1/auth/token", "/api/v1/me", "/api/v1/schema/"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if path in exempt:
                continue
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            assert "X-Org-Id" in names, f"{method.upper()} {path} lacks the X-Org-Id header"
            for status in ("400", "401", "403", "429"):
                assert status in operation["responses"], f"{method.upper()} {path} lacks {status}"
                assert "application/problem+json" in operation["responses"][status]["content"]


def test_schema_declares_bearer_security(schema):
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_docs_page_uses_local_assets_only(anon):
    response = anon.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    for cdn in ("cdn.jsdelivr", "unpkg.com", "cdnjs", "//cdn."):
        assert cdn not in html
