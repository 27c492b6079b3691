"""What customization reads of contacts through the hooks it offers (it knows nothing of contacts):
how many visible contacts carry each tag, and a contact's values for template rendering."""

from __future__ import annotations

from django.db.models import Count

from contacts.contact_fields import TOKEN_FIELDS
from contacts.models import Contact, ContactTag
from customization.catalog import register_tag_counter
from customization.rendering import ContactContext, register_contact_loader


def count_contacts_per_tag(membership, names: list[str]) -> dict[str, int]:
    """One grouped query over the tag rows of contacts the member can see."""
    rows = (
        ContactTag.objects.for_member(membership)
        .filter(tag__name__in=names)
        .values("tag__name")
        .annotate(contacts=Count("contact_id"))
        .order_by()
    )
    return {row["tag__name"]: row["contacts"] for row in rows}


def contact_context(membership, contact_id: int) -> ContactContext | None:
    contact = Contact.objects.for_member(membership).filter(pk=contact_id).first()
    if contact is None:
        return None
    return ContactContext(fields={name: getattr(contact, name) for name in TOKEN_FIELDS}, custom=contact.custom)


register_tag_counter(count_contacts_per_tag)
register_contact_loader(contact_context, TOKEN_FIELDS)
