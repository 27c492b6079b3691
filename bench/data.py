"""Deterministic, realistic contact rows for seeding and import (no Django models, no per-row queries).

Distributions: ~50 tags with zipf-like popularity (1-4 per contact), a rare tag on ~0.01% of
contacts anywhere in time, `legacy-2023` only on the 200 oldest contacts of the main org;
ten custom fields, one of every type, values in the canonical JSON form of
customization/field_types.py; 20 assignees; created_at spread over three years.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random

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
    "Maria",
    "Jose",
    "Wei",
    "Fatima",
    "Olga",
    "Ivan",
    "Priya",
    "Ahmed",
    "Lucia",
    "Kenji",
    "Amara",
    "Noah",
    "Emma",
    "Liam",
    "Olivia",
    "Mateo",
    "Chloe",
    "Yusuf",
    "Ingrid",
    "Pablo",
    "Aisha",
    "Tomas",
    "Elena",
    "Hiro",
    "Zara",
    "Omar",
    "Nina",
    "Felix",
    "Rosa",
    "Arjun",
    "Leila",
    "Hugo",
    "Mila",
    "Sven",
    "Ines",
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
    "Lamarr",
    "McCarthy",
    "Wilson",
    "Wirth",
    "Easley",
    "Knuth",
    "Goldwasser",
    "Smith",
    "Garcia",
    "Nguyen",
    "Kowalski",
    "Muller",
    "Rossi",
    "Silva",
    "Tanaka",
    "Khan",
    "Okafor",
    "Petrov",
    "Larsen",
    "Dubois",
    "Novak",
    "Haddad",
    "Fischer",
    "Moreau",
    "Jensen",
    "Costa",
    "Ibrahim",
    "Schmidt",
    "Anderson",
    "Robinson",
    "Clarkson",
    "Patel",
    "Yamamoto",
    "Andersson",
    "Jackson",
    "Mendes",
    "Walker",
    "Hughes",
    "Bennett",
    "Carter",
    "Brooks",
    "Foster",
    "Morrison",
]
WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Wonka",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Aperture",
]
SUFFIXES = ("Inc", "LLC", "Labs", "GmbH", "Ltd", "Group", "Systems", "Partners")
COMPANIES = [f"{a} {b}" for a, b in itertools.product(WORDS, SUFFIXES)] + [""] * 40
DOMAINS = ("example.com", "example.org", "mail.test", "inbox.test", "corp.test", "post.test")
SOURCES = ("website", "webinar", "referral", "import", "cold-sms", "event", "ads", "partner")
AREAS = (212, 312, 415, 617, 206, 303, 512, 646, 718, 805, 213, 404, 305, 702, 615)
NOTES = ("", "", "", "", "Asked for a demo.", "Prefers email.", "Met at the Berlin fair.", "Call back in Q3.")

TAG_NAMES = [
    "customer",
    "lead",
    "newsletter",
    "prospect",
    "webinar",
    "vip",
    "trial",
    "churn-risk",
    "partner",
    "event",
    "replied-interested",
    "cold",
    "warm",
    "hot",
    "enterprise",
    "smb",
    "agency",
    "reseller",
    "beta",
    "onboarding",
] + [f"campaign-{k:02d}" for k in range(1, 31)]
TAG_CUM_WEIGHTS = list(itertools.accumulate(1 / (k**1.07) for k in range(1, len(TAG_NAMES) + 1)))
TAGS_PER_CONTACT = (0, 1, 1, 1, 2, 2, 2, 3, 3, 4)
RARE_TAG = "rare-vip"
RARE_TAG_RATE = 0.0001
OLD_TAG = "legacy-2023"
OLD_TAG_ROWS = 200
COMMON_TAG = TAG_NAMES[0]
ALL_TAGS = [*TAG_NAMES, RARE_TAG, OLD_TAG]

PLANS = ["Free", "Starter", "Pro", "Enterprise"]
CHANNELS = ["Email", "SMS", "Phone", "Mail"]
CUSTOM_FIELDS = [  # (key, name, data_type, options)
    ("external_id", "External id", "text", []),
    ("plan", "Plan", "single_select", PLANS),
    ("channels", "Channels", "multi_select", CHANNELS),
    ("deal_size", "Deal size", "number", []),
    ("renewal_on", "Renewal date", "date", []),
    ("last_seen_at", "Last seen", "datetime", []),
    ("newsletter", "Newsletter", "boolean", []),
    ("billing_email", "Billing email", "email", []),
    ("mobile", "Mobile", "phone", []),
    ("website", "Website", "url", []),
]
RENEWAL_START = dt.date(2021, 1, 1)
RENEWAL_DAYS = 8 * 365
YEARS = 3

# contacts_contact as COPYed by the bench (ids given: the tag and value rows refer to them).
COPY_COLUMNS = (
    "id", "org_id", "first_name", "last_name", "name", "email", "email_key", "phone", "company", "source", "notes",
    "dnc", "assigned_to_id", "folded", "search_text", "created_at", "updated_at",
)  # fmt: skip
# Tag and value rows carry their contact's created_at (the list order of their own indexes).
TAG_COLUMNS = ("org_id", "contact_id", "tag_id", "created_at")  # contacts_contacttag
# contacts_fieldvalue: one row per stored item (contacts.services.stored_rows).
VALUE_COLUMNS = (
    "org_id", "contact_id", "field_id", "created_at", "position", "value", "folded", "text_key", "number", "day",
    "moment",
)  # fmt: skip


def external_id(org_id: int, index: int) -> str:
    return f"EXT-{org_id}-{index:08d}"


def email_for(first: str, last: str, index: int, domain: str, prefix: str = "") -> str:
    return f"{prefix}{first}.{last}{index}@{domain}".lower()


POOL_SIZE = 1 << 15  # distinct "profiles" (custom values + tags) drawn from; enough for the rare ranges to exist


class ContactFactory:
    """Makes contacts as plain dicts (API shape) or COPY tuples (table shape).

    Custom values and tags come from a pool of POOL_SIZE random profiles (generating them per
    row would make Python, not PostgreSQL, the bottleneck of seeding); names, emails, phones,
    external ids, the rare tag and timestamps are drawn per row. A seeded row names its profile
    by its index in `pool`, so the seeder can store each profile's value rows once
    (bench.rows.ProfileValues).
    """

    def __init__(self, seed: int, now: dt.datetime, pool_size: int = POOL_SIZE):
        from contacts.normalize import build_folded, build_search_text, display_name, email_key  # needs Django

        self.build_search_text, self.display_name = build_search_text, display_name
        self.build_folded, self.email_key = build_folded, email_key
        self.rng = random.Random(seed)
        self.now = now
        self.start = now - dt.timedelta(days=365 * YEARS)
        self._pool: list | None = None
        self.pool_size = pool_size

    @property
    def pool(self) -> list[tuple[dict, list[str]]]:
        """(custom values but external_id, tags) per profile."""
        if self._pool is None:
            self._pool = [(self.custom_values(), self.common_tags()) for _ in range(self.pool_size)]
        return self._pool

    def _pick(self):
        r = self.rng.random
        first, last = FIRST[int(r() * len(FIRST))], LAST[int(r() * len(LAST))]
        profile = int(r() * self.pool_size)
        tags = self.pool[profile][1]
        if r() < RARE_TAG_RATE:
            tags = sorted({*tags, RARE_TAG})
        return r, first, last, profile, tags

    def _contact_fields(self, r, first, last, index, prefix):
        email = email_for(first, last, index, DOMAINS[int(r() * len(DOMAINS))], prefix) if r() < 0.97 else None
        phone = f"+1{AREAS[int(r() * len(AREAS))]}{2000000 + int(r() * 7999999)}" if r() < 0.85 else None
        company = COMPANIES[int(r() * len(COMPANIES))]
        return email, phone, company, SOURCES[int(r() * len(SOURCES))], NOTES[int(r() * len(NOTES))], r() < 0.03

    def api_contact(self, org_id: int, index: int, prefix: str = "") -> dict:
        """One contact as a client would send it (import body), values canonical."""
        r, first, last, profile, tags = self._pick()
        email, phone, company, source, notes, dnc = self._contact_fields(r, first, last, index, prefix)
        return {
            "first_name": first, "last_name": last, "email": email, "phone": phone, "company": company,
            "source": source, "notes": notes, "tags": tags, "dnc": dnc,
            "custom": {"external_id": external_id(org_id, index), **self.pool[profile][0]},
        }  # fmt: skip

    def seed_row(self, contact_id, org_id, index, assigned_to, created_at, updated_at, extra_tag=None):
        """(a contacts_contact COPY row, its profile's index in `pool`, its tags): the seeding fast path.
        Its custom values are the profile's plus `external_id(org_id, index)`."""
        r, first, last, profile, tags = self._pick()
        email, phone, company, source, notes, dnc = self._contact_fields(r, first, last, index, "")
        if extra_tag:
            tags = sorted({*tags, extra_tag})
        row = self.contact_row(contact_id, org_id, first, last, email, phone, company, source, notes, dnc,
                               assigned_to, created_at, updated_at)  # fmt: skip
        return row, profile, tags

    def contact_row(self, contact_id, org_id, first, last, email, phone, company, source, notes, dnc, assigned_to,
                    created_at, updated_at) -> tuple:  # fmt: skip
        """A contacts_contact row (COPY_COLUMNS), its derived columns built as contacts.normalize builds them."""
        from psycopg.types.json import Jsonb

        name = self.display_name(first, last)
        texts = {"first_name": first, "last_name": last, "name": name, "company": company, "source": source,
                 "notes": notes}  # fmt: skip
        return (
            contact_id, org_id, first, last, name, email, self.email_key(email), phone, company, source, notes, dnc,
            assigned_to, Jsonb(self.build_folded(texts)), self.build_search_text(name, email, phone, company),
            created_at, updated_at,
        )  # fmt: skip

    def common_tags(self) -> list[str]:
        rng = self.rng
        return sorted(set(rng.choices(TAG_NAMES, cum_weights=TAG_CUM_WEIGHTS, k=rng.choice(TAGS_PER_CONTACT))))

    def custom_values(self) -> dict:
        """Custom values of one profile (every key but external_id), in canonical JSON form."""
        rng = self.rng
        custom: dict = {}
        r = rng.random()
        if r < 0.9:
            custom["plan"] = PLANS[int(r * 10) % 4]
        if r < 0.5:
            custom["channels"] = sorted(set(rng.choices(CHANNELS, k=1 + int(r * 6) % 3)), key=CHANNELS.index)
        if rng.random() < 0.8:
            number = round(rng.lognormvariate(7, 1.2), 2)
            custom["deal_size"] = int(number) if number.is_integer() else number
        if rng.random() < 0.9:
            custom["renewal_on"] = (RENEWAL_START + dt.timedelta(days=rng.randrange(RENEWAL_DAYS))).isoformat()
        if rng.random() < 0.7:
            offset = dt.timedelta(seconds=rng.randrange(YEARS * 365 * 86400), microseconds=rng.randrange(10**6))
            custom["last_seen_at"] = (self.start + offset).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if r < 0.6:
            custom["newsletter"] = r < 0.35
        if r > 0.7:
            custom["billing_email"] = f"billing{rng.randrange(10**6)}@{rng.choice(DOMAINS)}"
        if r > 0.8:
            custom["mobile"] = f"+1{rng.choice(AREAS)}{rng.randrange(2000000, 9999999)}"
        if 0.2 < r < 0.45:
            custom["website"] = f"https://{rng.choice(FIRST).lower()}-{rng.choice(LAST).lower()}.example.com/"
        return custom

    def copy_row(self, contact: dict, contact_id: int, org_id: int, assigned_to: int | None, created_at: dt.datetime,
                 updated_at: dt.datetime) -> tuple:  # fmt: skip
        """An API-shaped contact (`api_contact`) as a contacts_contact COPY row."""
        c = contact
        return self.contact_row(contact_id, org_id, c["first_name"], c["last_name"], c["email"], c["phone"],
                                c["company"], c["source"], c["notes"], c["dnc"], assigned_to, created_at,
                                updated_at)  # fmt: skip
