"""The staff admin in a real browser (Debian's chromium through Playwright, as crm/tests/test_browser.py),
at 1440 × 900, against a live server:

1. a superuser opens an org's contact list: it fits the window; a saved view filters it in one click;
   a custom-field column is added from the column chooser;
2. edits a contact's custom values in their typed editors (a date picker, a select, a number) and saves;
   adds a contact: choosing its organization brings its custom fields, the assignee is an autocomplete;
3. filters the list by source, selects all N matching contacts and tags them: the bulk job's page opens
   (the job runs after the browser, as a worker would run it);
4. a staff member who is not a superuser logs in and sees only their organization's contacts.

Screenshots of each step go to `test-artifacts/admin-browser/` (ignored by git; ADMIN_SCREENSHOTS overrides
it). Database work happens before the browser starts and after it stops (Playwright's sync API keeps an
event loop in this thread, and Django refuses sync queries there).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from contacts.models import Contact, SmartListView
from contacts.testing import make_contacts
from crm.tests.test_browser import CHROMIUM, CHROMIUM_ARGS
from customization.models import CustomField, CustomFieldFolder
from jobs.models import Job
from jobs.tests.helpers import run_jobs
from orgs.models import Membership, Organization

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-test-password"
WIDTH, HEIGHT = 1440, 900
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("ADMIN_SCREENSHOTS", ROOT / "test-artifacts" / "admin-browser"))
WEBINAR = 60  # more than a page (50), so "select all N" is offered


def seed() -> dict:
    """Acme (custom fields in a Billing folder, a saved view, 120 contacts) and Other (one contact)."""
    acme = Organization.objects.create(name="Acme")
    other = Organization.objects.create(name="Other")
    billing = CustomFieldFolder.objects.create(org=acme, name="Billing")
    for i, (key, name, data_type, options) in enumerate(
        [("plan", "Plan", "single_select", ["Gold", "Silver"]), ("renewal", "Renewal", "date", []),
         ("seats", "Seats", "number", [])]
    ):  # fmt: skip
        CustomField.objects.create(
            org=acme, key=key, name=name, data_type=data_type, folder=billing, options=options, position=i
        )
    rows = [
        {"name": f"Person {i:03}", "email": f"person{i}@acme.test", "phone": f"+1415555{i:04}",
         "company": "Acme Corporation International", "source": "webinar" if i < WEBINAR else "referral",
         "dnc": i % 10 == 0, "tags": ["customer"], "custom": {"plan": "Gold" if i % 4 == 0 else "Silver", "seats": i}}
        for i in range(120)
    ]  # fmt: skip
    make_contacts(acme, rows)
    make_contacts(other, [{"name": "Secret Person", "email": "secret@other.test"}])
    view = SmartListView.objects.create(
        org=acme, name="Gold plan",
        query={"groups": [{"conditions": [{"field": "custom.plan", "op": "eq", "value": "Gold"}]}]},
    )  # fmt: skip
    users = get_user_model().objects
    users.create_superuser("root@browser.test", "root@browser.test", PASSWORD)
    sam = users.create_user("sam@acme.test", "sam@acme.test", PASSWORD, is_staff=True, first_name="Sam")
    Membership.objects.create(org=acme, user=sam)
    return {"acme": acme, "view": view, "gold": Contact.objects.filter(org=acme).count() // 4}


def shoot(page, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def fits_the_window(page) -> bool:
    """Neither the page nor the list's own box scrolls sideways: every column is in view."""
    return page.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth && "
        "[...document.querySelectorAll('#changelist .results')].every(e => e.scrollWidth <= e.clientWidth)"
    )


def list_names(page) -> list[str]:
    return page.locator("#result_list tbody th.field-display_name a").all_inner_texts()


def views_and_columns(page, base: str, data: dict) -> None:
    """Step 1: the list fits at 1440 px (also with the org column of a list of every org); a saved view
    and a custom-field column, each one click."""
    page.goto(f"{base}/admin/contacts/contact/")
    assert page.locator("#result_list thead th.column-organization").count() == 1
    assert fits_the_window(page), "the list of every org overflows 1440 px"
    shoot(page, "0-every-org")
    page.goto(f"{base}/admin/contacts/contact/?org={data['acme'].pk}")
    assert fits_the_window(page), "the contact list overflows 1440 px"
    assert page.locator("#result_list tbody tr").count() == 50
    shoot(page, "1-contact-list")

    page.click("#saved-views a.saved-view:text-is('Gold plan')")
    page.wait_for_url(re.compile(rf"view={data['view'].pk}"))
    assert page.locator("#result_list tbody tr").count() == data["gold"]
    assert re.search(r"\b30 contacts\b", page.locator(".paginator").inner_text())
    shoot(page, "2-saved-view")

    page.click("#column-chooser a[data-column='custom.seats']")
    page.wait_for_url(re.compile(r"columns=custom.seats"))
    assert page.locator("#result_list thead th.column-custom_seats").inner_text().strip().lower() == "seats"
    assert page.locator("#result_list tbody td.field-custom_seats").count() == data["gold"]
    assert fits_the_window(page)
    shoot(page, "3-custom-column")


def typed_edit(page, base: str) -> str:
    """Step 2: a contact's custom values through their editors; returns the contact's name."""
    row = page.locator("#result_list tbody tr").first
    name = row.locator("th a").inner_text()
    row.locator("th a").click()
    page.wait_for_selector("fieldset.custom-folder")
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    assert page.locator("fieldset.custom-folder h2").first.inner_text().strip().lower() == "billing"
    page.fill("input[type=date][name=custom__renewal]", "2026-09-01")
    page.select_option("select[name=custom__plan]", "Silver")
    page.fill("input[type=number][name=custom__seats]", "25")
    shoot(page, "4-typed-editors")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist li.success")
    assert page.locator(".errornote").count() == 0
    assert not errors, errors
    shoot(page, "5-saved")
    return name


def choose(page, select_id: str, term: str, option: str) -> None:
    """Pick `option` in the select2 autocomplete of `select_id`, typing `term`."""
    page.click(f"#{select_id} + .select2 .select2-selection")
    page.fill(".select2-container--open .select2-search__field", term)
    page.click(f".select2-results__option:text-is('{option}')")


def new_contact(page, base: str, data: dict) -> None:
    """Step 2b: a new contact: choosing its organization brings that org's custom fields; the assignee
    is chosen among the org's members."""
    page.goto(f"{base}/admin/contacts/contact/add/")
    assert page.locator("[name=custom__plan]").count() == 0  # two orgs: none chosen yet
    choose(page, "id_org", "Acme", str(data["acme"]))
    page.wait_for_url(re.compile(r"add/\?org=\d+"))
    page.fill("#id_name", "Grace Hopper")
    page.select_option("select[name=custom__plan]", "Gold")
    choose(page, "id_assigned_to", "sam", "Sam")
    shoot(page, "5b-new-contact")
    page.click("input[name=_save]")
    page.wait_for_selector("ul.messagelist li.success")


def bulk_tag(page, base: str, data: dict) -> None:
    """Step 3: filter by source, select all matching contacts, tag them: a job."""
    page.goto(f"{base}/admin/contacts/contact/?org={data['acme'].pk}")
    page.click("#changelist-filter a:text-is('webinar')")
    page.wait_for_url(re.compile(r"source=webinar"))
    page.check("#action-toggle")
    page.click(".actions .question a")
    page.wait_for_selector(".actions .all", state="visible")
    page.select_option("select[name=action]", "tag_selected")
    shoot(page, "6-select-all")
    page.click("button[name=index]")
    page.wait_for_selector("#contact-bulk-form")
    assert f"all {WEBINAR} contacts of the filtered list" in page.locator("#content h1").inner_text()
    page.fill("input[name=tags]", "Webinar-2026")
    shoot(page, "7-bulk-tag-form")
    page.click("#contact-bulk-form input[type=submit]")
    page.wait_for_url(re.compile(r"/admin/jobs/job/\d+/change/"))
    assert "job #" in page.locator("ul.messagelist li.success").inner_text()
    shoot(page, "8-job")


def member_view(page, base: str) -> None:
    """Step 4: a staff member of Acme who is not a superuser."""
    log_in(page, base, "sam@acme.test")
    page.goto(f"{base}/admin/contacts/contact/")
    names = list_names(page)
    assert len(names) == 50 and "Secret Person" not in names
    assert "Secret Person" not in page.content()
    assert page.locator("#saved-views").inner_text().startswith("Acme")
    assert re.search(r"\b121 contacts\b", page.locator(".paginator").inner_text())  # with Grace
    shoot(page, "9-member-sees-their-org")
    page.goto(f"{base}/admin/contacts/contact/?q=secret")
    assert page.locator("#result_list").count() == 0 or list_names(page) == []
    page.goto(f"{base}/admin/")
    assert "Other" not in page.locator("#content-main").inner_text()


def test_staff_admin_in_a_browser(live_server):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (Debian package `chromium`; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    data = seed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            root = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
            root.set_default_timeout(20_000)
            log_in(root, base, "root@browser.test")
            views_and_columns(root, base, data)
            edited = typed_edit(root, base)
            new_contact(root, base, data)
            bulk_tag(root, base, data)
            member = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
            member.set_default_timeout(20_000)
            member_view(member, base)
        finally:
            browser.close()

    contact = Contact.objects.get(org=data["acme"], name=edited)
    assert {k: contact.custom.get(k) for k in ("plan", "renewal", "seats")} == {
        "plan": "Silver", "renewal": "2026-09-01", "seats": 25
    }  # fmt: skip
    grace = Contact.objects.get(name="Grace Hopper")
    assert (grace.org, grace.custom, grace.assigned_to.username) == (data["acme"], {"plan": "Gold"}, "sam@acme.test")
    job = Job.objects.get()
    assert (job.kind, job.params["expected_count"]) == ("bulk", WEBINAR)
    run_jobs()
    tagged = [c for c in Contact.objects.filter(org=data["acme"]) if "webinar-2026" in c.tags]
    assert len(tagged) == WEBINAR and {c.source for c in tagged} == {"webinar"}
    for shot in sorted(SHOTS.glob("*.png")):
        assert shot.stat().st_size > 0, shot
