"""`make run`'s demo org: created once, seeded once, and the same login printed on every run.

The login (the owner's API token and admin password) is kept in a file beside the data: in the
embedded server's folder (`.pgdata/demo-login.json`, deleted with it by `make clean-db`), or in
`.demo-login.json` with DATABASE_URL. A token is minted only when the kept one no longer works
(first run, revoked, another database); minting one revokes every other token of the demo owner,
so no earlier demo token stays valid.
"""

import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.exceptions import AuthenticationFailed

from contacts.demo import seed_demo
from contacts.models import Contact, Opportunity, SmartListView
from crm.db_security import rls_bypass
from customization.models import CustomField, CustomFieldFolder, Tag
from orgs.models import Membership
from orgs.services import create_org, issue_token

DEMO_ORG = "Demo"
DEMO_OWNER = "demo@example.com"


def default_login_file() -> Path:
    if getattr(settings, "DEMO_LOGIN_FILE", None):
        return Path(settings.DEMO_LOGIN_FILE)
    if settings.DATABASES["default"]["ENGINE"] == "crm.db_embedded":
        return Path(settings.EMBEDDED_PGDATA) / "demo-login.json"
    return Path(settings.BASE_DIR) / ".demo-login.json"


class Command(BaseCommand):
    help = (
        "Create the demo org once (idempotent; --contacts N seeds it with contacts, custom fields, tags, "
        "opportunities and saved views); print its owner's API token, a curl and the admin login."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Where the server listens (for the printed URLs).")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--contacts",
            type=int,
            default=0,
            help="Make sure the demo org has at least this many contacts (seeds the rest, and the demo's "
            "custom fields, opportunities and saved views).",
        )
        parser.add_argument("--login-file", type=Path, default=None, help="Where the demo login is kept.")

    def handle(self, *args, **opts):
        with rls_bypass():  # bootstrap spans orgs: the named escape hatch, not the superuser
            membership = self.demo_membership()
            if opts["contacts"]:
                seed_demo(membership, opts["contacts"], stdout=self.stderr)
            login = self.login(membership.user, opts["login_file"] or default_login_file())
            self.report(membership, login, opts)

    def demo_membership(self) -> Membership:
        demo = Membership.objects.select_related("org", "user").filter(
            org__name=DEMO_ORG, user__username=DEMO_OWNER, role=Membership.Role.OWNER
        )
        if not demo.exists():
            create_org(DEMO_ORG, DEMO_OWNER)
        return demo.get()

    def login(self, user, file: Path) -> dict:
        """The kept token and password when they still work; otherwise new ones, kept for next time."""
        kept = read_login(file)
        token = kept.get("token")
        if not token_works(token, user):
            token = issue_token(user)
            AuthToken.objects.filter(user=user).exclude(token_key=token[: CONSTANTS.TOKEN_KEY_LENGTH]).delete()
        password = kept.get("password") or new_password(user)
        if not user.is_staff:
            user.is_staff = True  # staff, not a superuser: the admin shows it the orgs it belongs to
            user.save(update_fields=["is_staff"])
        if {"token": token, "password": password} != {"token": kept.get("token"), "password": kept.get("password")}:
            write_login(file, {"token": token, "password": password})
        return {"token": token, "password": password if user.check_password(password) else None}

    def report(self, membership, login: dict, opts) -> None:
        org, user = membership.org, membership.user
        host = "127.0.0.1" if opts["host"] in ("0.0.0.0", "::", "") else opts["host"]
        base = f"http://{host}:{opts['port']}"
        token = login["token"]
        self.stdout.write(json.dumps({"org_id": org.id, "user_id": user.id, "token": token}))
        counts = {
            "contacts": Contact.objects.for_org(org.id).count(),
            "custom fields": CustomField.objects.for_org(org.id).count(),
            "folders": CustomFieldFolder.objects.for_org(org.id).count(),
            "tags": Tag.objects.for_org(org.id).count(),
            "saved views": SmartListView.objects.for_org(org.id).count(),
            "opportunities": Opportunity.objects.for_org(org.id).count(),
        }
        password = (
            login["password"] or "(changed since; set it with `python manage.py changepassword demo@example.com`)"
        )
        self.stdout.write(
            f"\nDemo org #{org.id} {org.name!r}: " + ", ".join(f"{n:,} {what}" for what, n in counts.items()) + ".\n"
            f"API token of its owner (the same on every run): {token}\n"
            f"Try:\n"
            f"  curl -H 'Authorization: Bearer {token}' -H 'X-Org-Id: {org.id}' '{base}/api/v1/contacts?limit=3'\n"
            f"API docs: {base}/api/docs/   API guide: docs/api.md\n"
            f"Admin: {base}/admin/  user {user.username}  password {password}\n"
        )


def read_login(file: Path) -> dict:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return {}


def write_login(file: Path, login: dict) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # secrets: the owner's eyes only
    with os.fdopen(descriptor, "w") as out:
        json.dump(login, out)


def token_works(token: str | None, user) -> bool:
    """Knox's own check of a token (digest, expiry, active user), and that it is the demo owner's."""
    if not token:
        return False
    try:
        found, _ = TokenAuthentication().authenticate_credentials(token.encode())
    except AuthenticationFailed:
        return False
    return found.pk == user.pk


def new_password(user) -> str:
    password = secrets.token_urlsafe(12)
    user.set_password(password)
    user.save(update_fields=["password"])
    return password
