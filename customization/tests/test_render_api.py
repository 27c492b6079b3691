import pytest

from contacts.testing import make_contact
from customization.models import CustomField, CustomValue

pytestmark = pytest.mark.django_db

RENDER = "/api/v1/templates/render"


@pytest.fixture
def ada(alice):
    CustomField.objects.create(
        org=alice.org, key="plan", name="Plan", data_type="single_select", options=["Free", "Pro"]
    )
    CustomField.objects.create(
        org=alice.org, key="channels", name="Channels", data_type="multi_select", options=["Email", "SMS"]
    )
    CustomField.objects.create(org=alice.org, key="score", name="Score", data_type="number")
    CustomValue.objects.create(org=alice.org, key="calendar_link", value="https://cal.test/acme")
    return make_contact(
        org=alice.org,
        first_name="Ada",
        last_name="Lovelace",
        name="Ada Lovelace",
        email="ada@example.com",
        company="Engines",
        custom={"plan": "Pro", "channels": ["Email", "SMS"], "score": 4.5},
    )


def render(actor, template, contact_id=None):
    body = {"template": template}
    if contact_id is not None:
        body["contact_id"] = contact_id
    return actor.client.post(RENDER, body, format="json")


def test_tokens_are_substituted(alice, ada):
    template = (
        "Hi {{contact.first_name}} {{ contact.last_name }} ({{contact.name}}, {{contact.email}}, "
        "{{contact.company}}), plan {{contact.custom.plan}} via {{contact.custom.channels}} "
        "score {{contact.custom.score}}: {{  custom_values.calendar_link  }}"
    )
    response = render(alice, template, ada.id)
    assert response.status_code == 200
    assert response.json() == {
        "rendered": "Hi Ada Lovelace (Ada Lovelace, ada@example.com, Engines), plan Pro via Email, SMS "
        "score 4.5: https://cal.test/acme",
        "missing": [],
    }


def test_missing_values_render_empty_and_are_listed_once(alice, ada):
    template = "{{contact.phone}}|{{contact.source}}|{{contact.custom.nope}}|{{custom_values.nope}}|{{contact.phone}}"
    body = render(alice, template, ada.id).json()
    assert body["rendered"] == "||||"
    assert body["missing"] == ["contact.phone", "contact.source", "contact.custom.nope", "custom_values.nope"]


def test_without_a_contact_contact_tokens_are_missing(alice, ada):
    body = render(alice, "Hi {{contact.first_name}}, {{custom_values.calendar_link}}").json()
    assert body == {"rendered": "Hi , https://cal.test/acme", "missing": ["contact.first_name"]}


@pytest.mark.parametrize(
    "template",
    [
        "{{ 7*7 }}",
        "{% load static %}{% debug %}",
        "{{ ''.__class__.__mro__ }}",
        "{{ config.items() }}",
        "${7*7} <%= 7*7 %> #{7*7}",
        "{{{contact}}}",
    ],
)
def test_hostile_templates_are_not_executed(alice, ada, template):
    body = render(alice, template, ada.id).json()
    assert body == {"rendered": template, "missing": []}


@pytest.mark.parametrize(
    "token",
    [
        "contact.__class__",
        "contact.__init__.__globals__",
        "contact.notes",
        "contact.custom.__dict__",
        "custom_values.__class__",
        "contact.org_id",
        "contact.first_name|upper",
    ],
)
def test_tokens_outside_the_grammar_are_left_verbatim_and_listed(alice, ada, token):
    template = f"x {{{{{token}}}}} y"
    body = render(alice, template, ada.id).json()
    assert body == {"rendered": template, "missing": [token]}


def test_values_are_inserted_as_text_not_re_rendered(alice, ada):
    CustomValue.objects.create(org=alice.org, key="evil", value="{{contact.email}} {% debug %}")
    body = render(alice, "{{custom_values.evil}}", ada.id).json()
    assert body["rendered"] == "{{contact.email}} {% debug %}"


def test_template_cap_and_types_are_422(alice):
    too_long = render(alice, "x" * 20_001)
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["attr"] == "template"
    assert render(alice, "x" * 20_000).status_code == 200
    for body, attr in (
        ({}, "template"),
        ({"template": 5}, "template"),
        ({"template": "x", "contact_id": "abc"}, "contact_id"),
        ({"template": "x", "contact_id": 0}, "contact_id"),
    ):
        response = alice.client.post(RENDER, body, format="json")
        assert response.status_code == 422 and response.json()["errors"][0]["attr"] == attr


def test_unknown_contact_is_404(alice):
    assert render(alice, "hi", 999999).status_code == 404


def test_other_orgs_contact_and_values_are_invisible(alice, charlie, ada):
    assert render(charlie, "{{contact.first_name}}", ada.id).status_code == 404
    body = render(charlie, "{{custom_values.calendar_link}}").json()
    assert body == {"rendered": "", "missing": ["custom_values.calendar_link"]}


def test_assigned_only_member_renders_only_their_contacts(alice, carol, ada):
    assert render(carol, "{{contact.first_name}}", ada.id).status_code == 404
    mine = make_contact(org=alice.org, first_name="Grace", assigned_to=carol.user)
    assert render(carol, "Hi {{contact.first_name}}", mine.id).json()["rendered"] == "Hi Grace"


def test_bob_renders_any_contact_of_the_org(bob, ada):
    assert render(bob, "{{contact.first_name}}", ada.id).json()["rendered"] == "Ada"


def test_a_fallback_fills_an_empty_value_and_is_not_missing(alice, ada):
    template = (
        'Hi {{contact.phone | default: "there"}}, {{ contact.first_name|default:"you" }} '
        "{{custom_values.nope | default: 'soon'}}"
    )
    assert render(alice, template, ada.id).json() == {"rendered": "Hi there, Ada soon", "missing": []}


def test_a_fallback_serves_without_a_contact_and_for_custom_fields(alice, ada):
    body = render(alice, '{{contact.first_name | default: "there"}} {{contact.custom.nope | default: "-"}}').json()
    assert body == {"rendered": "there -", "missing": []}


def test_an_empty_fallback_accepts_an_empty_value(alice, ada):
    assert render(alice, 'Hi{{contact.source | default: ""}}!', ada.id).json() == {"rendered": "Hi!", "missing": []}


def test_a_fallback_is_inserted_as_given(alice, ada):
    body = render(alice, '{{contact.source | default: "<b>$x % | it\'s"}}', ada.id).json()
    assert body["rendered"] == "<b>$x % | it's"


@pytest.mark.parametrize(
    "token",
    ['contact.nope | default: "x"', 'contact.first_name | upper: "x"', "contact.first_name | default: there"],
)
def test_a_fallback_does_not_hide_a_token_outside_the_grammar(alice, ada, token):
    template = f"{{{{{token}}}}}"
    body = render(alice, template, ada.id).json()
    assert body["rendered"] == template and len(body["missing"]) == 1
