"""A real browser (Debian's chromium through Playwright; never a downloaded browser) against a live server.

1. `/api/docs/` renders Swagger UI's operation list from the app's own static files: every request the page
   makes goes to the live server, none to a CDN.
2. A staff user logs into `/admin/` through the login form, opens the contact changelist of an org with
   10,000 contacts (through the request middleware's RLS bypass role), edits one contact's tags in the
   comma-separated tags field, saves, and sees the success message; the database has the new tags.

Screenshots of each step go to the test's tmp_path. Database work happens before the browser starts and
after it stops: Playwright's sync API keeps an event loop in this thread, and Django refuses sync queries
from there (`SynchronousOnlyOperation`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from contacts.demo import seed_demo_contacts
from contacts.models import Contact
from customization.models import Tag
from orgs.models import Organization
from orgs.services import create_org

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
CONTACTS = 10_000
PASSWORD = "browser-test-password"
# Generous for a loaded 2-core machine; a changelist that counts or sorts the whole table would still pass
# on 10k rows, so this guards against pathologies (timeouts, N+1 pages), not against a slow plan.
CHANGELIST_SECONDS = 15


def shoot(page, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def test_swagger_ui_and_admin_tag_edit(live_server, tmp_path: Path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package `chromium`; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    # --- data, before the browser's event loop exists in this thread -----------------------------------
    org = Organization.objects.get(pk=create_org("Browser", "owner@browser.test")["org_id"])
    started = time.monotonic()
    seed_demo_contacts(org, CONTACTS)
    seed_seconds = time.monotonic() - started
    contact = Contact.objects.for_org(org.id).order_by("-created_at", "-id").first()  # one org: its API order
    new_tags = ["browser-checked", "vip"]
    assert sorted(contact.tags) != new_tags
    get_user_model().objects.create_superuser("staff@browser.test", "staff@browser.test", PASSWORD)

    shots = tmp_path / "screenshots"
    shots.mkdir()
    host = urlsplit(live_server.url).netloc
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(20_000)

            # --- 1. Swagger UI from local assets --------------------------------------------------------
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{live_server.url}/api/docs/")
            page.wait_for_selector(".opblock", state="visible")
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            paths = {text.replace("\u200b", "").strip() for text in paths}
            assert "/api/v1/contacts/search" in paths
            assert "/api/v1/contacts" in paths
            docs_shot = shoot(page, shots, "1-swagger-ui")
            foreign = [url for url in requested if urlsplit(url).scheme in ("http", "https", "ws", "wss")]
            foreign = [url for url in foreign if urlsplit(url).netloc != host]
            assert requested, "the page made no request at all"
            assert not foreign, f"requests to other hosts (a CDN?): {foreign}"
            assert any(urlsplit(url).path.startswith("/static/") for url in requested)
            assert any(urlsplit(url).path == "/api/v1/schema/" for url in requested)

            # --- 2. Admin: log in, changelist of 10k contacts, edit tags --------------------------------
            page.goto(f"{live_server.url}/admin/")
            page.fill("#id_username", "staff@browser.test")
            page.fill("#id_password", PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_selector("#user-tools")
            login_shot = shoot(page, shots, "2-admin-index")

            started = time.monotonic()
            response = page.goto(f"{live_server.url}/admin/contacts/contact/?org={org.id}")
            changelist_seconds = time.monotonic() - started
            assert response is not None and response.status == 200
            rows = page.locator("#result_list tbody tr")
            assert rows.count() == 50  # list_per_page
            assert re.search(rf"\b{CONTACTS}\s+contacts\b", page.locator(".paginator").inner_text())
            assert changelist_seconds < CHANGELIST_SECONDS, f"changelist took {changelist_seconds:.1f}s"
            changelist_shot = shoot(page, shots, "3-changelist")

            # Newest first: the first row is the contact picked above.
            page.locator("#result_list tbody tr").first.locator("th a").click()
            page.wait_for_url(re.compile(rf"/admin/contacts/contact/{contact.pk}/change/"))
            tags_input = page.locator("input#id_tags")
            assert sorted(t.strip() for t in tags_input.input_value().split(",") if t.strip()) == sorted(contact.tags)
            tags_input.fill(" Browser-Checked ; vip ")  # normalized like the API: lowercased, trimmed
            change_shot = shoot(page, shots, "4-change-form")
            page.click("input[name=_save]")
            page.wait_for_selector("ul.messagelist li.success")
            message = page.locator("ul.messagelist li.success").inner_text()
            assert "was changed successfully" in message
            assert page.locator(".errornote").count() == 0
            saved_shot = shoot(page, shots, "5-saved")
        finally:
            browser.close()

    # --- after the browser: the database has the edit ----------------------------------------------------
    contact.refresh_from_db()
    assert sorted(contact.tags) == new_tags
    assert Tag.objects.filter(org=org, name="browser-checked").exists()  # new names join the catalog
    for shot in (docs_shot, login_shot, changelist_shot, change_shot, saved_shot):
        assert shot.is_file() and shot.stat().st_size > 0, shot
    print(f"seeded {CONTACTS} contacts in {seed_seconds:.1f}s; changelist in {changelist_seconds:.1f}s")
