import json

from django.core.management.base import BaseCommand, CommandError

from orgs.models import Membership, Organization
from orgs.services import add_member


class Command(BaseCommand):
    help = "Add (or update) a member of an org; print {user_id, token} as one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("org_id", type=int)
        parser.add_argument("email")
        parser.add_argument("--role", choices=Membership.Role.values, default=Membership.Role.MEMBER)
        parser.add_argument("--scope", choices=Membership.DataScope.values, default=Membership.DataScope.ALL)
        parser.add_argument("--password", default=None)

    def handle(self, *args, **opts):
        org = Organization.objects.filter(pk=opts["org_id"]).first()
        if org is None:
            raise CommandError(f"No organization with id {opts['org_id']}.")
        result = add_member(org, opts["email"], opts["role"], opts["scope"], opts["password"])
        self.stdout.write(json.dumps(result))
