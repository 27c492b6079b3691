"""`make run`'s demo org (bootstrap_demo): seeded once with a living CRM, the same login on every run."""

import json
import time
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient

from contacts.models import Contact, FieldValue, Opportunity, SmartListView
from customization.models import CustomField, CustomFieldFolder

pytestmark = pytest.mark.django_db


@pytest.fixture
def bootstrap(tmp_path):
    login_file = tmp_path / "demo-login.json"

    def run(*args) -> tuple[dict, str, str]:
        out, err = StringIO(), StringIO()
        call_command("bootstrap_demo", "--login-file", str(login_file), *args, stdout=out, stderr=err)
        return json.loads(out.getvalue().splitlines()[0]), out.getvalue(), err.getvalue()

    run.login_file = login_file
    return run


def api(result) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {result['token']}", HTTP_X_ORG_ID=str(result["org_id"]))
    return client


def test_the_demo_org_is_a_living_crm_seeded_quickly(bootstrap):
    started = time.monotonic()
    result, out, err = bootstrap("--contacts", "1000")
    assert time.monotonic() - started < 30
    org = result["org_id"]
    assert Contact.objects.for_org(org).count() == 1000
    assert "1000/1000" in err
    folders = {f.name: sorted(f.fields.values_list("key", flat=True)) for f in CustomFieldFolder.objects.for_org(org)}
    assert folders == {
        "Sales": ["renewal", "score", "seats", "tier"],
        "Engagement": ["call_at", "channels", "last_seen"],
    }
    assert FieldValue.objects.for_org(org).count() > 2000
    assert Opportunity.objects.for_org(org).count() > 150
    client = api(result)
    assert len(client.get("/api/v1/tags").json()["results"]) == 8
    views = client.get("/api/v1/contacts/views").json()["views"]
    assert [v["name"] for v in views] == ["Gold and Platinum customers", "Replied, may be contacted"]
    for view in views:
        page = client.get("/api/v1/contacts", {"view": view["id"], "limit": 5})
        assert page.status_code == 200 and page.json()["count"] > 10, page.json()
    contact = client.get("/api/v1/contacts", {"limit": 1}).json()["results"][0]
    assert contact["email"] and contact["phone"].startswith("+") and contact["company"] is not None
    assert client.get("/api/v1/contacts/duplicates").status_code == 200
    assert "1,000 contacts, 7 custom fields, 2 folders, 8 tags, 2 saved views" in out


def test_the_seed_values_are_canonical_and_validate_like_api_writes(bootstrap):
    result, _, _ = bootstrap("--contacts", "200")
    client = api(result)
    for contact in client.get("/api/v1/contacts", {"limit": 200}).json()["results"]:
        body = {"phone": contact["phone"], "email": contact["email"], "custom": contact["custom"]}
        patched = client.patch(f"/api/v1/contacts/{contact['id']}", body, format="json")
        assert patched.status_code == 200, (contact, patched.json())
        assert patched.json()["custom"] == contact["custom"]


def test_a_second_run_adds_nothing_and_prints_the_same_token(bootstrap):
    first, _, _ = bootstrap("--contacts", "300")
    counts = (Contact.objects.count(), Opportunity.objects.count(), CustomField.objects.count())
    second, out, _ = bootstrap("--contacts", "300")
    assert second == first
    assert (Contact.objects.count(), Opportunity.objects.count(), CustomField.objects.count()) == counts
    assert SmartListView.objects.count() == 2
    assert f"curl -H 'Authorization: Bearer {first['token']}' -H 'X-Org-Id: {first['org_id']}'" in out
    assert api(second).get("/api/v1/org").status_code == 200


def test_a_new_token_is_minted_only_when_the_kept_one_stopped_working_and_no_old_one_stays_valid(bootstrap):
    first, _, _ = bootstrap()
    user = get_user_model().objects.get(username="demo@example.com")
    AuthToken.objects.create(user=user)  # say, an old run's token
    assert api(first).delete("/api/v1/auth/token").status_code == 204  # the kept one is revoked
    second, _, _ = bootstrap()
    assert second["token"] != first["token"]
    assert api(second).get("/api/v1/org").status_code == 200
    assert AuthToken.objects.filter(user=user).count() == 1  # the new one only

    bootstrap.login_file.unlink()  # the kept login lost: another new one
    third, _, _ = bootstrap()
    assert api(second).get("/api/v1/org").status_code == 401
    assert api(third).get("/api/v1/org").status_code == 200


def test_the_admin_login_is_printed_and_works_on_every_run(bootstrap):
    bootstrap()
    _, out, _ = bootstrap()
    password = out.split("password ")[-1].split()[0]
    user = get_user_model().objects.get(username="demo@example.com")
    assert user.is_staff and not user.is_superuser
    assert Client().login(username="demo@example.com", password=password)
    assert bootstrap.login_file.stat().st_mode & 0o077 == 0  # the kept login is the owner's alone


def test_a_password_changed_since_is_not_printed(bootstrap):
    bootstrap()
    user = get_user_model().objects.get(username="demo@example.com")
    user.set_password("mine-now-123")
    user.save()
    _, out, _ = bootstrap()
    assert "changepassword" in out
    assert user.check_password("mine-now-123")
