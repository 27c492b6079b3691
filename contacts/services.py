"""Contact writes: normalized values in, one transaction, catalog kept in sync, 409 on duplicates."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from contacts.models import Contact
from crm.api.exceptions import Conflict
from customization.catalog import ensure_tags
from orgs.models import Membership

EMAIL_CONSTRAINT = "contact_org_email_uniq"


def duplicate_email_conflict(org_id: int, email: str, membership: Membership | None) -> Conflict:
    """409 naming the existing contact only when the caller may see it."""
    # lower(email), not email__iexact's UPPER(): the unique index serves it.
    existing = Contact.objects.for_org(org_id).alias(email_key=Lower("email")).filter(email_key=email.lower())
    if membership is not None:
        existing = existing.for_member(membership)
    existing_id = existing.values_list("id", flat=True).first()
    extra = {"existing_id": existing_id} if existing_id is not None else {}
    return Conflict(
        "A contact with this email already exists in this organization.", attr="email", code="duplicate_email", **extra
    )


def _save(contact: Contact, membership: Membership | None, **save_kwargs) -> Contact:
    try:
        with transaction.atomic():
            if contact.tags:
                ensure_tags(contact.org_id, contact.tags)
            contact.save(**save_kwargs)
    except IntegrityError as exc:
        if EMAIL_CONSTRAINT in str(exc) and contact.email:
            raise duplicate_email_conflict(contact.org_id, contact.email, membership) from exc
        raise
    return contact


def create_contact(org_id: int, values: dict, membership: Membership | None = None) -> Contact:
    return _save(Contact(org_id=org_id, **values), membership)


def update_contact(contact: Contact, values: dict, membership: Membership | None = None) -> Contact:
    for key, value in values.items():
        setattr(contact, key, value)
    return _save(contact, membership)
