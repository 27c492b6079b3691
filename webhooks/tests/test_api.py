"""`/webhooks` through the API: owner/admin only, other orgs see nothing, closed bodies, the secret
shown once, events and saved views checked, SSRF refusals (DESIGN §4 "Change feed and webhooks")."""

from __future__ import annotations

import ipaddress

import pytest

from contacts.models import SmartListView
from webhooks import targets
from webhooks.models import Delivery, Webhook

pytestmark = pytest.mark.django_db

URL = "https://hooks.example.com/crm"
PUBLIC = "93.184.215.14"


@pytest.fixture
def dns(monkeypatch):
    """Names resolved by the test, never by the network: {host: [addresses]}; an unknown name does not resolve."""
    table: dict[str, list[str]] = {"hooks.example.com": [PUBLIC]}

    def resolve(host, port):
        if host in table:
            return [ipaddress.ip_address(a) for a in table[host]]
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            raise targets.RefusedTarget("unresolvable", f"The host {host!r} does not resolve.") from None

    monkeypatch.setattr(targets, "resolve", resolve)
    return table


def post(actor, body):
    return actor.client.post("/api/v1/webhooks", body, format="json")


def codes(response) -> list[tuple[str | None, str]]:
    return [(error["attr"], error["code"]) for error in response.json()["errors"]]


# --- create, read, change, delete -------------------------------------------------------------------


def test_owner_creates_a_webhook_and_sees_its_secret_once(alice, dns):
    response = post(alice, {"url": URL, "events": ["contact.updated", "contact.created", "contact.created"]})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["contact.created", "contact.updated"]  # once each, in catalog order
    assert (created["active"], created["view"], created["disabled_reason"]) == (True, None, None)
    assert created["created_by"] == alice.user.id

    shown = alice.client.get(f"/api/v1/webhooks/{created['id']}").json()
    assert "secret" not in shown and shown == {k: v for k, v in created.items() if k != "secret"}
    listed = alice.client.get("/api/v1/webhooks").json()
    assert listed["count"] == 1 and "secret" not in listed["results"][0]
    assert created["secret"] not in alice.client.get(f"/api/v1/webhooks/{created['id']}/deliveries").content.decode()


def test_two_webhooks_have_different_secrets(alice, dns):
    first = post(alice, {"url": URL, "events": ["*"]}).json()
    second = post(alice, {"url": URL, "events": ["*"]}).json()
    assert first["secret"] != second["secret"]


def test_an_admin_may_too(org_a, dns):
    from conftest import make_actor
    from orgs.models import Membership

    admin = make_actor(org_a, "ada@a.test", Membership.Role.ADMIN)
    assert post(admin, {"url": URL, "events": ["*"]}).status_code == 201


def test_patch_changes_what_it_names(alice, dns):
    webhook = post(alice, {"url": URL, "events": ["*"]}).json()
    response = alice.client.patch(
        f"/api/v1/webhooks/{webhook['id']}", {"events": ["tag.*"], "active": False}, format="json"
    )
    assert response.status_code == 200, response.content
    changed = response.json()
    assert (changed["url"], changed["events"], changed["active"]) == (URL, ["tag.*"], False)
    assert changed["disabled_reason"] is None  # paused by a PATCH, not disabled by failures
    resumed = alice.client.patch(f"/api/v1/webhooks/{webhook['id']}", {"active": True}, format="json").json()
    assert resumed["active"] is True and resumed["cursor"] == webhook["cursor"]  # resumes where it stopped


def test_delete_removes_the_webhook_and_its_deliveries(alice, dns):
    webhook = post(alice, {"url": URL, "events": ["*"]}).json()
    Delivery.objects.create(
        org_id=alice.org.id, webhook_id=webhook["id"], message_id="msg_x", first_seq=1, first_part=0, first_id=1,
        last_seq=1, last_part=2, last_id=0, entry_count=1,
    )  # fmt: skip
    assert alice.client.delete(f"/api/v1/webhooks/{webhook['id']}").status_code == 204
    assert not Webhook.objects.filter(pk=webhook["id"]).exists()
    assert not Delivery.objects.filter(webhook_id=webhook["id"]).exists()
    assert alice.client.get(f"/api/v1/webhooks/{webhook['id']}").status_code == 404


def test_a_delivery_that_succeeded_cannot_be_retried(alice, dns):
    webhook = post(alice, {"url": URL, "events": ["*"]}).json()
    done = Delivery.objects.create(
        org_id=alice.org.id, webhook_id=webhook["id"], message_id="msg_x", first_seq=1, first_part=0, first_id=1,
        last_seq=1, last_part=2, last_id=0, entry_count=1, status=Delivery.Status.SUCCEEDED,
    )  # fmt: skip
    response = alice.client.post(f"/api/v1/webhooks/{webhook['id']}/deliveries/{done.pk}/retry")
    assert response.status_code == 409 and codes(response) == [(None, "already_delivered")]
    missing = alice.client.post(f"/api/v1/webhooks/{webhook['id']}/deliveries/999999/retry")
    assert missing.status_code == 404
    assert alice.client.post(f"/api/v1/webhooks/{webhook['id']}/deliveries/x1/retry").status_code == 404


# --- who may ------------------------------------------------------------------------------------------


@pytest.fixture
def alices_webhook(alice, dns) -> dict:
    webhook = post(alice, {"url": URL, "events": ["*"]}).json()
    delivery = Delivery.objects.create(
        org_id=alice.org.id, webhook_id=webhook["id"], message_id="msg_x", first_seq=1, first_part=0, first_id=1,
        last_seq=1, last_part=2, last_id=0, entry_count=1, status=Delivery.Status.RETRYING,
    )  # fmt: skip
    return {"id": webhook["id"], "delivery": delivery.pk}


ROUTES = [
    ("get", "/api/v1/webhooks", None),
    ("post", "/api/v1/webhooks", {"url": URL, "events": ["*"]}),
    ("get", "/api/v1/webhooks/{id}", None),
    ("patch", "/api/v1/webhooks/{id}", {"url": "https://hooks.example.com/pwned"}),
    ("delete", "/api/v1/webhooks/{id}", None),
    ("get", "/api/v1/webhooks/{id}/deliveries", None),
    ("post", "/api/v1/webhooks/{id}/deliveries/{delivery}/retry", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_members_get_403_on_every_route(bob, alices_webhook, method, path, body):
    before = list(Webhook.objects.values()), list(Delivery.objects.values())
    response = getattr(bob.client, method)(path.format(**alices_webhook), body, format="json")
    assert response.status_code == 403, response.content
    assert "owner or admin" in response.json()["detail"]
    assert (list(Webhook.objects.values()), list(Delivery.objects.values())) == before


@pytest.mark.parametrize(("method", "path", "body"), [r for r in ROUTES if "{id}" in r[1]])
def test_another_orgs_owner_gets_404_and_changes_nothing(charlie, alices_webhook, method, path, body):
    before = list(Webhook.objects.values()), list(Delivery.objects.values())
    response = getattr(charlie.client, method)(path.format(**alices_webhook), body, format="json")
    assert response.status_code == 404, response.content
    assert URL not in response.content.decode()
    assert (list(Webhook.objects.values()), list(Delivery.objects.values())) == before
    assert charlie.client.get("/api/v1/webhooks").json()["count"] == 0


# --- bodies -------------------------------------------------------------------------------------------


def test_unknown_keys_are_refused(alice, dns):
    response = post(alice, {"url": URL, "events": ["*"], "secret": "whsec_mine", "filter": {}})
    assert response.status_code == 422 and codes(response) == [("secret", "unknown_key"), ("filter", "unknown_key")]
    webhook = post(alice, {"url": URL, "events": ["*"]}).json()
    patched = alice.client.patch(f"/api/v1/webhooks/{webhook['id']}", {"position": 0}, format="json")
    assert patched.status_code == 422 and codes(patched) == [("position", "unknown_key")]
    assert post(alice, ["not", "an", "object"]).status_code == 422


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"events": ["*"]}, [("url", "required")]),
        ({"url": URL}, [("events", "required")]),
        ({"url": URL, "events": []}, [("events", "min_length")]),
        ({"url": URL, "events": ["contact.created", "contact.exploded"]}, [("events.1", "invalid_choice")]),
        ({"url": URL, "events": ["contact.deleted"]}, [("events.0", "invalid_choice")]),  # contacts are trashed
        ({"url": 7, "events": ["*"]}, [("url", "invalid")]),
        ({"url": URL, "events": ["*"], "view": 999999}, [("view", "not_found")]),
    ],
)
def test_invalid_bodies_name_the_culprit(alice, dns, body, expected):
    response = post(alice, body)
    assert response.status_code == 422, response.content
    assert codes(response) == expected


def test_a_view_of_another_org_is_not_found(alice, charlie, dns):
    theirs = SmartListView.objects.create(org=charlie.org, name="Theirs", query={})
    response = post(alice, {"url": URL, "events": ["*"], "view": theirs.pk})
    assert response.status_code == 422 and codes(response) == [("view", "not_found")]


def test_a_webhook_on_a_view_takes_contact_and_opportunity_events_only(alice, dns):
    view = SmartListView.objects.create(org=alice.org, name="VIP", query={})
    refused = post(alice, {"url": URL, "events": ["contact.created", "tag.created"], "view": view.pk})
    assert refused.status_code == 422 and codes(refused) == [("events", "not_with_view")]
    for events in (["contact.*", "opportunity.deleted"], ["*"]):
        assert post(alice, {"url": URL, "events": events, "view": view.pk}).status_code == 201
    webhook = post(alice, {"url": URL, "events": ["tag.created"]}).json()
    patched = alice.client.patch(f"/api/v1/webhooks/{webhook['id']}", {"view": view.pk}, format="json")
    assert patched.status_code == 422 and codes(patched) == [("events", "not_with_view")]


# --- where it may send (SSRF) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:8000/hook", "private_address"),  # loopback
        ("http://[::1]/hook", "private_address"),
        ("https://10.1.2.3/hook", "private_address"),
        ("https://internal.example/hook", "private_address"),  # a name that resolves to a private address
        ("https://mixed.example/hook", "private_address"),  # one of its addresses is private
        ("http://169.254.169.254/latest/meta-data/", "link_local_address"),
        ("http://metadata.example/", "link_local_address"),
        ("http://[fe80::1]/hook", "link_local_address"),
        ("http://[::ffff:169.254.169.254]/hook", "link_local_address"),
        ("http://[64:ff9b::a9fe:a9fe]/hook", "link_local_address"),  # NAT64 of 169.254.169.254
        ("http://[2002:a00:1::]/hook", "private_address"),  # 6to4 of 10.0.0.1
        ("http://0.0.0.0/hook", "not_unicast_address"),
        ("http://224.0.0.1/hook", "not_unicast_address"),
        ("http://100.64.0.1/hook", "private_address"),  # shared address space (carrier-grade NAT)
        ("https://nowhere.example/hook", "unresolvable"),
        ("ftp://hooks.example.com/hook", "invalid_url"),
        ("https://user:pw@hooks.example.com/hook", "invalid_url"),
        ("hooks.example.com/hook", "invalid_url"),
    ],
)
def test_targets_inside_the_network_are_refused(alice, dns, url, code):
    dns.update(
        {
            "internal.example": ["10.0.0.5"],
            "mixed.example": [PUBLIC, "192.168.1.9"],
            "metadata.example": ["169.254.169.254"],
        }
    )
    response = post(alice, {"url": url, "events": ["*"]})
    assert response.status_code == 422, response.content
    assert codes(response) == [("url", code)]
    assert not Webhook.objects.exists()


def test_allow_private_allows_loopback_and_private_never_link_local(alice, dns, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    dns.update({"internal.example": ["10.0.0.5"], "metadata.example": ["169.254.169.254"]})
    for url in ("http://127.0.0.1:9/hook", "http://[::1]:9/hook", "https://internal.example/hook"):
        assert post(alice, {"url": url, "events": ["*"]}).status_code == 201, url
    for url in ("http://169.254.169.254/", "http://metadata.example/", "http://[fe80::1]/", "http://[fd00:ec2::254]/"):
        response = post(alice, {"url": url, "events": ["*"]})
        assert response.status_code == 422 and codes(response) == [("url", "link_local_address")], url
        assert "never allowed" in response.json()["detail"]


def test_patching_the_url_checks_it_again(alice, dns):
    webhook = post(alice, {"url": URL, "events": ["*"]}).json()
    response = alice.client.patch(
        f"/api/v1/webhooks/{webhook['id']}", {"url": "http://169.254.169.254/"}, format="json"
    )
    assert response.status_code == 422 and codes(response) == [("url", "link_local_address")]
    assert Webhook.objects.get(pk=webhook["id"]).url == URL


def test_the_refusal_says_what_the_name_resolved_to(alice, dns):
    dns["internal.example"] = ["10.0.0.5"]
    detail = post(alice, {"url": "https://internal.example/", "events": ["*"]}).json()["detail"]
    assert "internal.example resolves to 10.0.0.5" in detail and "WEBHOOK_ALLOW_PRIVATE=1" in detail


def test_the_real_resolver_answers_for_ip_literals_without_the_network():
    assert targets.resolve("127.0.0.1", 80) == [ipaddress.ip_address("127.0.0.1")]
