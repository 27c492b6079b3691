"""Demo data: a living CRM to try the API and the admin on (`make run`, `bootstrap_demo --contacts N`).

`seed_demo` fills the demo org once: two folders of custom fields (the ones docs/filters.md's
examples name), tags, contacts with custom values and tags, opportunities and two saved views.
Everything is written set-based (a few `bulk_create`s), so 1,000 contacts take about a second.
The data is fictional: names of computing pioneers, `example.com` addresses, and phone numbers in
the ranges reserved for fiction (US 555-01xx, UK 020 7946 0xxx).
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from contacts.models import Contact, ContactTag, FieldValue, Opportunity, SmartListView
from contacts.normalize import build_folded, build_search_text, email_key
from contacts.search.saved_views import replace_views
from contacts.services import stored_rows, tag_row
from crm.progress import ProgressBar
from customization.catalog import ensure_tags
from customization.models import CustomField, CustomFieldFolder
from customization.services import create_field, save_folder

_FIRST = (
    "Ada Grace Alan Katherine Linus Margaret Edsger Barbara Dennis Frances Ken Radia Tim Hedy John Sophie "
    "Niklaus Annie Donald Shafi Mary Dorothy Evelyn Guido Bjarne James Ivan Leslie Adele Jean Fernando "
    "Yukihiro Anita Susan Whitfield Lynn Cynthia Vint Bob Elizabeth Jim Kathleen Carol Marian Hal Joan "
    "Erna Klara Chieko Mae"
)
FIRST = _FIRST.split()
_LAST = (
    "Lovelace Hopper Turing Johnson Torvalds Hamilton Dijkstra Liskov Ritchie Allen Thompson Perlman "
    "Berners-Lee Lamarr McCarthy Wilson Wirth Easley Knuth Goldwasser Keller Vaughan Boyd Rossum Stroustrup "
    "Gosling Sutherland Lamport Goldberg Sammet Corbató Matsumoto Borg Kare Diffie Conway Dwork Cerf Kahn "
    "Feigenbaum Gray Booth Shaw Croft Abelson Clarke Hoover Asakawa Jemison"
)
LAST = _LAST.split()
COMPANIES = (
    ("Analytical Engines", "analytical-engines.example.com"),
    ("Harbor Logistics", "harborlogistics.example.com"),
    ("Bletchley Analytics", "bletchley.example.com"),
    ("Orbital Foods", "orbitalfoods.example.com"),
    ("Kernel & Co", "kernelco.example.com"),
    ("Apollo Systems", "apollo-systems.example.com"),
    ("Northwind Traders", "northwind.example.com"),
    ("Blue Yonder Airlines", "blueyonder.example.com"),
    ("Fabrikam Health", "fabrikam.example.com"),
    ("Tailspin Toys", "tailspin.example.com"),
    ("Contoso Pharmaceuticals", "contoso.example.com"),
    ("Wide World Importers", "wideworld.example.com"),
    ("Litware", "litware.example.com"),
    ("Proseware", "proseware.example.com"),
    ("Adventure Works Cycles", "adventure-works.example.com"),
    ("Coho Vineyard", "cohovineyard.example.com"),
)
PERSONAL_DOMAINS = ("example.com", "example.org", "example.net")
SOURCES = ("website", "webinar", "referral", "import", "trade show", "cold call", "partner")
TAGS = ("lead", "customer", "vip", "newsletter", "replied-interested", "cold", "webinar", "partner")
US_AREA_CODES = ("212", "415", "312", "617", "206", "512", "303", "404", "305", "213")

TIERS = ["Bronze", "Silver", "Gold", "Platinum"]
CHANNELS = ["Email", "SMS", "Phone", "WhatsApp"]
FOLDERS = {
    "Sales": [
        {"key": "tier", "name": "Tier", "data_type": "single_select", "options": TIERS},
        {"key": "seats", "name": "Seats", "data_type": "number"},
        {"key": "renewal", "name": "Renewal date", "data_type": "date"},
        {"key": "score", "name": "Lead score", "data_type": "number"},
    ],
    "Engagement": [
        {"key": "channels", "name": "Channels", "data_type": "multi_select", "options": CHANNELS},
        {"key": "call_at", "name": "Next call", "data_type": "datetime"},
        {"key": "last_seen", "name": "Last seen", "data_type": "datetime"},
    ],
}  # fmt: skip

VIEWS = [
    {
        "name": "Gold and Platinum customers",
        "query": {"groups": [{"conditions": [{"field": "custom.tier", "op": "in", "value": ["Gold", "Platinum"]}]}]},
        "sort": [{"field": "custom.renewal", "direction": "asc"}],
        "columns": ["name", "email", "company", "custom.tier", "custom.seats", "custom.renewal"],
    },
    {
        "name": "Replied, may be contacted",
        "query": {
            "groups": [
                {
                    "conditions": [
                        {"field": "tags", "op": "contains", "value": "replied-interested"},
                        {"field": "dnc", "op": "eq", "value": False},
                    ]
                }
            ]
        },
        "sort": [{"field": "created_at", "direction": "desc"}],
        "columns": ["name", "email", "phone", "company", "tags", "custom.score"],
    },
]

# (pipeline, stage, status) of the opportunities.
STAGES = (
    ("New business", "Qualified", "open"),
    ("New business", "Demo", "open"),
    ("New business", "Proposal", "open"),
    ("New business", "Negotiation", "open"),
    ("New business", "Closed", "won"),
    ("New business", "Closed", "lost"),
    ("Renewals", "Up for renewal", "open"),
    ("Renewals", "Renewed", "won"),
)
PRODUCTS = ("Starter plan", "Team plan", "Enterprise plan", "Onboarding", "Support add-on", "Seat expansion")


@dataclass
class Seeded:
    contacts: int = 0
    opportunities: int = 0
    fields: dict[str, CustomField] = field(default_factory=dict)


def seed_demo(membership, count: int, stdout=None) -> Seeded:
    """Bring the demo org (of the owner's `membership`) to `count` contacts, with its custom fields,
    tags, values, opportunities and saved views; whatever it already has is kept (idempotent)."""
    org = membership.org
    with transaction.atomic():
        fields = ensure_custom_fields(org.id)
    missing = count - Contact.objects.for_org(org.id).count()
    seeded = Seeded(fields=fields)
    if missing > 0:
        seeded.contacts, seeded.opportunities = seed_demo_contacts(
            org, missing, stdout=stdout, fields=fields, owner_id=membership.user_id
        )
    if not SmartListView.objects.for_org(org.id).exists():
        replace_views(membership, {"views": VIEWS}, None)
    return seeded


def ensure_custom_fields(org_id: int) -> dict[str, CustomField]:
    """The demo's folders and fields, created when missing; returned by key."""
    existing = {f.key: f for f in CustomField.objects.for_org(org_id)}
    for folder_name, specs in FOLDERS.items():
        folder = CustomFieldFolder.objects.for_org(org_id).filter(name=folder_name).first()
        if folder is None:
            folder = save_folder(CustomFieldFolder(org_id=org_id, name=folder_name, position=None))
        for spec in specs:
            if spec["key"] not in existing:
                existing[spec["key"]] = create_field(org_id, {"options": [], **spec, "folder": folder})
    return existing


def seed_demo_contacts(
    org, count: int, stdout=None, batch_size: int = 2000, fields: dict | None = None, owner_id: int | None = None
) -> tuple[int, int]:
    """Add `count` demo contacts to `org` (with custom values when `fields` are given, and then
    opportunities); returns (contacts, opportunities) added."""
    rng = random.Random(org.id)
    start = Contact.objects.for_org(org.id).count()
    bar = ProgressBar(count, "Seeding contacts", stream=stdout)
    tag_ids = ensure_tags(org.id, TAGS)
    emails = set(Contact.objects.for_org(org.id).values_list("email", flat=True))
    opportunities = 0
    for offset in range(0, count, batch_size):
        people = [
            _person(rng, i, emails, owner_id) for i in range(start + offset, start + min(offset + batch_size, count))
        ]
        with transaction.atomic():
            contacts = Contact.objects.bulk_create([p.contact(org.id) for p in people])
            ContactTag.objects.bulk_create(
                tag_row(contact, tag_ids[name]) for contact, p in zip(contacts, people, strict=True) for name in p.tags
            )
            if fields:
                _write_values(rng, org.id, contacts, people, fields)
                opportunities += _write_opportunities(rng, org.id, contacts, people)
        bar.advance(len(people))
    return count, opportunities


@dataclass
class _Person:
    first: str
    last: str
    company: str
    email: str
    phone: str | None
    source: str
    dnc: bool
    created_at: dt.datetime
    tags: list[str]
    assigned_to_id: int | None
    uk: bool

    def contact(self, org_id: int) -> Contact:
        name = f"{self.first} {self.last}"
        text = {"first_name": self.first, "last_name": self.last, "name": name, "company": self.company}
        text["source"] = self.source
        return Contact(
            org_id=org_id,
            email=self.email,
            email_key=email_key(self.email),
            phone=self.phone,
            dnc=self.dnc,
            assigned_to_id=self.assigned_to_id,
            created_at=self.created_at,
            folded=build_folded(text),
            search_text=build_search_text(name, self.email, self.phone, self.company),
            **text,
        )


def _person(rng: random.Random, i: int, emails: set, owner_id: int | None) -> _Person:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    company, domain = rng.choice(COMPANIES) if rng.random() < 0.85 else ("", rng.choice(PERSONAL_DOMAINS))
    local = f"{first}.{last}".lower().replace("ó", "o") if company else f"{first}{last}{i}".lower().replace("ó", "o")
    email = f"{local}@{domain}"
    if email in emails:
        email = f"{local}{i}@{domain}"
    emails.add(email)
    uk = rng.random() < 0.15
    if rng.random() < 0.06:
        phone = None
    elif uk:
        phone = f"+4420794600{i % 100:02d}" if i % 2 else f"+44207946{i % 1000:04d}"
    else:
        phone = f"+1{US_AREA_CODES[i % len(US_AREA_CODES)]}55501{(i // len(US_AREA_CODES)) % 100:02d}"
    tags = rng.sample(TAGS, rng.choice((0, 1, 1, 2, 2, 3)))
    return _Person(
        first=first,
        last=last,
        company=company,
        email=email,
        phone=phone,
        source=rng.choice(SOURCES),
        dnc=rng.random() < 0.05,
        created_at=timezone.now() - dt.timedelta(minutes=rng.randint(0, 60 * 24 * 700)),
        tags=tags,
        assigned_to_id=owner_id if owner_id and rng.random() < 0.3 else None,
        uk=uk,
    )


def _values(rng: random.Random, person: _Person) -> dict:
    """Raw custom values of one person (canonicalized by their field types when written)."""
    now = timezone.now()
    values: dict = {}
    if "customer" in person.tags or rng.random() < 0.35:
        values["tier"] = rng.choices(TIERS, weights=[40, 30, 20, 10])[0]
        values["seats"] = rng.randint(1, 500)
        values["renewal"] = (now + dt.timedelta(days=rng.randint(-60, 365))).date().isoformat()
    if rng.random() < 0.8:
        values["score"] = round(rng.uniform(0, 100), 1)
    if rng.random() < 0.7:
        values["channels"] = rng.sample(CHANNELS, rng.randint(1, 3))
    if rng.random() < 0.15:
        day = now + dt.timedelta(days=rng.randint(0, 14))
        values["call_at"] = day.replace(hour=rng.randint(9, 17), minute=rng.choice((0, 30)), second=0).isoformat()
    if rng.random() < 0.7:
        values["last_seen"] = (now - dt.timedelta(minutes=rng.randint(0, 60 * 24 * 120))).isoformat()
    return values


def _write_values(rng: random.Random, org_id: int, contacts, people, fields: dict) -> None:
    rows = []
    for contact, person in zip(contacts, people, strict=True):
        for key, raw in _values(rng, person).items():
            definition = fields.get(key)
            if definition is None:
                continue
            canonical = definition.field_type.canonicalize(raw, options=definition.options, tz="UTC")
            rows += stored_rows(org_id, contact.pk, definition, canonical, contact.created_at)
    FieldValue.objects.bulk_create(rows)


def _write_opportunities(rng: random.Random, org_id: int, contacts, people) -> int:
    deals = []
    for contact, person in zip(contacts, people, strict=True):
        if rng.random() >= 0.25:
            continue
        pipeline, stage, status = rng.choice(STAGES)
        deals.append(
            Opportunity(
                org_id=org_id,
                contact=contact,
                name=f"{person.company or person.last} – {rng.choice(PRODUCTS)}",
                pipeline=pipeline,
                stage=stage,
                status=status,
                value=Decimal(rng.randrange(500, 60_000, 50)),
                currency="GBP" if person.uk else rng.choice(("USD", "USD", "USD", "EUR")),
                assigned_to_id=person.assigned_to_id,
                created_at=contact.created_at + dt.timedelta(days=rng.randint(0, 30)),
            )
        )
    Opportunity.objects.bulk_create(deals)
    return len(deals)
