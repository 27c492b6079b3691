"""Demo data: believable contacts for trying the API and the admin (`bootstrap_demo --contacts N`)."""

from __future__ import annotations

import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from contacts.models import Contact, ContactTag
from contacts.normalize import build_folded, build_search_text, email_key
from contacts.services import tag_row
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
    tag_ids = ensure_tags(org.id, TAGS)
    for offset in range(0, count, batch_size):
        batch, tags = [], []
        for i in range(start + offset, start + min(offset + batch_size, count)):
            first, last, company = rng.choice(FIRST), rng.choice(LAST), rng.choice(COMPANIES)
            name = f"{first} {last}"
            email = f"demo{i}@example.com"
            phone = f"+1415555{i % 10000:04d}"
            source = rng.choice(SOURCES)
            text = {"first_name": first, "last_name": last, "name": name, "company": company, "source": source}
            batch.append(
                Contact(
                    org_id=org.id,
                    email=email,
                    email_key=email_key(email),
                    phone=phone,
                    dnc=rng.random() < 0.05,
                    created_at=now - timedelta(minutes=rng.randint(0, 60 * 24 * 365)),
                    folded=build_folded(text),
                    search_text=build_search_text(name, email, phone, company),
                    **text,
                )
            )
            tags.append(rng.sample(TAGS, rng.randint(0, 3)))
        with transaction.atomic():
            Contact.objects.bulk_create(batch)
            ContactTag.objects.bulk_create(
                tag_row(contact, tag_ids[name]) for contact, names in zip(batch, tags, strict=True) for name in names
            )
        bar.advance(len(batch))
    return count
