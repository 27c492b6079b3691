"""JSON types are checked, not coerced (crm/api/serializer_fields.py): a text field refuses a
number, a decimal field a JSON number; and every serializer of the project uses those fields."""

import pytest
from rest_framework import serializers

import crm.urls  # noqa: F401 - loads every view, hence every serializer
from crm.api.serializer_fields import StrictDecimalField, StrictModelSerializer, StringOnly

pytestmark = pytest.mark.django_db

OUR_APPS = ("crm.", "contacts.", "customization.", "orgs.")


@pytest.fixture
def contact(alice):
    return alice.client.post("/api/v1/contacts", {"name": "Ada"}, format="json").json()


def refused(response, attr: str, code: str = "invalid"):
    assert response.status_code == 422, response.json()
    return [e["code"] for e in response.json()["errors"] if e["attr"] == attr] == [code]


@pytest.mark.parametrize("field", ["name", "pipeline", "stage", "currency"])
@pytest.mark.parametrize("value", [0, 12.5, True, ["x"], {"x": 1}])
def test_an_opportunitys_text_field_refuses_what_is_not_a_string(alice, contact, field, value):
    body = {"contact": contact["id"], "name": "Deal", field: value}
    assert refused(alice.client.post("/api/v1/opportunities", body, format="json"), field)


@pytest.mark.parametrize(("value", "stored"), [(1500, "1500.00"), (1500.5, "1500.50"), ("1500.5", "1500.50")])
def test_money_is_written_as_a_decimal_string_or_a_json_number_and_read_as_a_string(alice, contact, value, stored):
    body = {"contact": contact["id"], "name": "Deal", "value": value}
    created = alice.client.post("/api/v1/opportunities", body, format="json")
    assert created.status_code == 201 and created.json()["value"] == stored


@pytest.mark.parametrize("value", [True, 0.001, 1e15, [1], {"x": 1}])
def test_money_refuses_what_is_no_amount(alice, contact, value):
    body = {"contact": contact["id"], "name": "Deal", "value": value}
    response = alice.client.post("/api/v1/opportunities", body, format="json")
    assert response.status_code == 422 and response.json()["errors"][0]["attr"] == "value"


@pytest.mark.parametrize(
    ("url", "body", "attr"),
    [
        ("/api/v1/custom-field-folders", {"name": 0}, "name"),
        ("/api/v1/custom-fields", {"name": 7, "data_type": "text"}, "name"),
        ("/api/v1/custom-fields", {"name": "Tier", "key": 7, "data_type": "text"}, "key"),
        ("/api/v1/custom-fields", {"name": "Tier", "data_type": "single_select", "options": [1, 2]}, "options.0"),
    ],
)
def test_customization_text_fields_refuse_numbers(alice, url, body, attr):
    assert refused(alice.client.post(url, body, format="json"), attr)


def test_custom_values_and_templates_keep_their_wrong_type_answer(alice):
    assert refused(
        alice.client.post("/api/v1/templates/render", {"template": 5}, format="json"), "template", "wrong_type"
    )


@pytest.mark.parametrize("body", [{"email": 0, "password": "pw"}, {"email": "alice@a.test", "password": 1234}])
def test_password_login_refuses_numbers(anon, body):
    attr = next(key for key, value in body.items() if not isinstance(value, str))
    assert refused(anon.post("/api/v1/auth/token", body, format="json"), attr)


# --- every serializer uses them ----------------------------------------------------------


def our_serializers() -> list[type]:
    found, todo = [], [serializers.BaseSerializer]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith(OUR_APPS) and not issubclass(cls, serializers.ListSerializer):
            found.append(cls)
    return found


def lax_fields(serializer, path=""):
    """Dotted names of the text and decimal fields that would coerce a wrong JSON type."""
    for name, field in serializer.fields.items():
        here = f"{serializer.__class__.__name__}.{name}" if not path else f"{path}.{name}"
        yield from lax_field(field, here)


def lax_field(field, here):
    if isinstance(field, serializers.ListSerializer | serializers.ListField | serializers.DictField):
        yield from lax_field(field.child, here + "[]")
    elif isinstance(field, serializers.BaseSerializer):
        yield from lax_fields(field, here)
    elif isinstance(field, serializers.CharField) and not isinstance(field, StringOnly | serializers.IPAddressField):
        yield here  # DRF's IPAddressField refuses non-strings itself
    elif isinstance(field, serializers.DecimalField) and not isinstance(field, StrictDecimalField):
        yield here


def test_every_serializer_of_the_project_uses_the_strict_fields():
    found = our_serializers()
    assert len(found) > 20
    assert [
        c.__name__
        for c in found
        if issubclass(c, serializers.ModelSerializer)
        and c is not StrictModelSerializer
        and not issubclass(c, StrictModelSerializer)
    ] == []
    assert [name for cls in found if cls is not StrictModelSerializer for name in lax_fields(cls())] == []


def test_the_guard_sees_a_lax_field():
    class Lax(serializers.Serializer):
        plain = serializers.CharField()
        listed = serializers.ListField(child=serializers.EmailField())
        money = serializers.DecimalField(max_digits=5, decimal_places=2)

    assert list(lax_fields(Lax())) == ["Lax.plain", "Lax.listed[]", "Lax.money"]
