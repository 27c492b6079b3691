import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from orgs.services import create_org


class Command(BaseCommand):
    help = "Create an organization and its owner; print {org_id, user_id, token} as one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--password", default=None)
        parser.add_argument("--region", default="US", help="Default phone region (ISO 3166-1 alpha-2).")
        parser.add_argument("--timezone", default="UTC", help="IANA time zone.")

    def handle(self, *args, **opts):
        try:
            result = create_org(
                opts["name"],
                opts["owner_email"],
                opts["password"],
                default_region=opts["region"].upper(),
                timezone=opts["timezone"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
        self.stdout.write(json.dumps(result))
