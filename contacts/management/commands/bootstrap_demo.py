import json

from django.core.management.base import BaseCommand

from contacts.demo import seed_demo_contacts
from contacts.models import Contact
from crm.db_security import rls_bypass
from orgs.models import Membership, Organization
from orgs.services import create_org, issue_token

DEMO_ORG = "Demo"
DEMO_OWNER = "demo@example.com"
DEMO_PASSWORD = "demo-password"


class Command(BaseCommand):
    help = "Create the demo org once (idempotent; --contacts N seeds it); print a fresh owner token and a curl."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--contacts",
            type=int,
            default=0,
            help="Make sure the demo org has at least this many contacts (seeds the rest).",
        )

    def handle(self, *args, **opts):
        with rls_bypass():  # bootstrap spans orgs: the named escape hatch, not the superuser
            self.bootstrap(opts)

    def bootstrap(self, opts):
        membership = (
            Membership.objects.select_related("org", "user")
            .filter(org__name=DEMO_ORG, user__username=DEMO_OWNER, role=Membership.Role.OWNER)
            .first()
        )
        if membership is None:
            result = create_org(DEMO_ORG, DEMO_OWNER, DEMO_PASSWORD)
            org = Organization.objects.get(pk=result["org_id"])
            token = result["token"]
            user_id = result["user_id"]
        else:
            org, token, user_id = membership.org, issue_token(membership.user), membership.user_id
        if opts["contacts"]:
            self.seed_contacts(org, opts["contacts"])
        base = f"http://127.0.0.1:{opts['port']}"
        self.stdout.write(json.dumps({"org_id": org.id, "user_id": user_id, "token": token}))
        self.stdout.write(
            f"\nDemo org #{org.id}; owner {DEMO_OWNER} / {DEMO_PASSWORD} (admin at {base}/admin/ after "
            f"`python manage.py createsuperuser`).\nTry:\n"
            f"  curl -H 'Authorization: Bearer {token}' -H 'X-Org-Id: {org.id}' {base}/api/v1/org\n"
            f"API docs: {base}/api/docs/\n"
        )

    def seed_contacts(self, org, count):
        missing = count - Contact.objects.for_org(org.id).count()
        if missing > 0:
            seed_demo_contacts(org, missing, stdout=self.stderr)
