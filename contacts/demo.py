"""Demo data: believable contacts for trying the API and the admin (`bootstrap_demo --contacts N`)."""

from __future__ import annotations

import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from contacts.models import Contact
from contacts.normalize import build_search_text
from crm.progress import ProgressBar
from customization.catalog import ensure_tags

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Linus",
    "Margaret",
    "Edsger",
    "Barbara",
    "Dennis",
    "Frances",
    "Ken",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Sophie",
    "Niklaus",
    "Annie",
    "Donald",
    "Shafi",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Johnson",
    "Torvalds",
    "Hamilton",
    "Dijkstra",
    "Liskov",
    "Ritchie",
    "Allen",
    "Thompson",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "McCarthy",
    "Wilson",
    "Wirth",
    "Easley",
    "Knuth",
    "Goldwasser",
]
COMPANIES = ["Analytical Engines", "Navy Labs", "Bletchley", "Orbital", "Kernel Co", "Apollo Systems", ""]
TAGS = ["lead", "customer", "vip", "newsletter", "replied-interested", "cold", "webinar", "partner"]
SOURCES = ["webinar", "import", "referral", "website", "cold-sms"]


def seed_demo_contacts(org, count: int, stdout=None, batch_size: int = 2000) -> int:
    """Add `count` demo contacts to `org` (emails `demo<N>@example.com`, unique per run)."""
    rng = random.Random(org.id)
    start = Contact.objects.for_org(org.id).count()
    now = timezone.now()
    bar = ProgressBar(count, "Seeding contacts", stream=stdout)
    ensure_tags(org.id, TAGS)
    for offset in range(0, count, batch_size):
        batch = []
        for i in range(start + offset, start + min(offset + batch_size, count)):
            first, last, company = rng.choice(FIRST), rng.choice(LAST), rng.choice(COMPANIES)
            name = f"{first} {last}"
            email = f"demo{i}@example.com"
            phone = f"+1415555{i % 10000:04d}"
            batch.append(
                Contact(
                    org_id=org.id,
                    first_name=first,
                    last_name=last,
                    name=name,
                    email=email,
                    phone=phone,
                    company=company,
                    source=rng.choice(SOURCES),
                    tags=rng.sample(TAGS, rng.randint(0, 3)),
                    dnc=rng.random() < 0.05,
                    created_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 365)),
                    search_text=build_search_text(name, email, phone, company),
                )
            )
        with transaction.atomic():
            Contact.objects.bulk_create(batch)
        bar.advance(len(batch))
    return count
