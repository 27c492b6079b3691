import json

import pytest
from django.contrib.auth import get_user_model

from customization.models import CustomField, CustomFieldFolder, CustomValue, Tag

pytestmark = pytest.mark.django_db

OUR_PATHS = (
    "/api/v1/tags",
    "/api/v1/custom-",
    "/api/v1/templates/",
    "/api/v1/contacts/{id}/custom",
    "/api/v1/contacts/{id}/tags",
)


@pytest.fixture
def operations(anon):
    schema = json.loads(anon.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content)
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        if path.startswith(OUR_PATHS)
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_request_body_has_a_schema_and_an_example(operations):
    bodies = [(m, p, op["requestBody"]) for m, p, op in operations if "requestBody" in op]
    assert len(bodies) >= 9
    for method, path, body in bodies:
        content = body["content"]["application/json"]
        assert "$ref" in content["schema"], f"{method} {path}"
        assert content.get("examples"), f"{method} {path} has no request example"


def test_every_success_response_is_typed(operations):
    for method, path, operation in operations:
        ok = [status for status in operation["responses"] if status.startswith("2")]
        assert ok, f"{method} {path}"
        for status in ok:
            if status != "204":
                assert operation["responses"][status]["content"]["application/json"]["schema"], f"{method} {path}"


def test_admin_only_operations_say_so(operations):
    admin_only = {
        ("PATCH", "/api/v1/tags/{id}"),
        ("DELETE", "/api/v1/tags/{id}"),
        ("POST", "/api/v1/custom-fields"),
        ("PATCH", "/api/v1/custom-fields/{id}"),
        ("DELETE", "/api/v1/custom-fields/{id}"),
        ("POST", "/api/v1/custom-field-folders"),
        ("PUT", "/api/v1/custom-values/{key}"),
        ("DELETE", "/api/v1/custom-values/{key}"),
    }
    described = {(m, p) for m, p, op in operations if "Owner or admin only" in op.get("description", "")}
    assert admin_only <= described
    for method, path, operation in operations:
        if (method, path) in admin_only:
            assert "403" in operation["responses"]


def test_admin_lists_and_searches_every_catalog(client, org_a):
    user = get_user_model().objects.create_superuser("staff", "staff@a.test", "pw")
    client.force_login(user)
    folder = CustomFieldFolder.objects.create(org=org_a, name="Billing")
    Tag.objects.create(org=org_a, name="vip")
    field = CustomField.objects.create(org=org_a, key="plan", name="Plan", data_type="text", folder=folder)
    CustomValue.objects.create(org=org_a, key="link", value="https://x.test")
    for model in ("tag", "customfieldfolder", "customfield", "customvalue"):
        url = f"/admin/customization/{model}/"
        assert client.get(url).status_code == 200
        assert client.get(f"{url}?q=a&org__id__exact={org_a.id}").status_code == 200
    page = client.get(f"/admin/customization/customfield/{field.id}/change/")
    assert page.status_code == 200
