"""Receivers of customization.signals (tag rename/delete, field delete) that update contacts,
and the hooks customization reads contacts through (tag counts, template contexts).

Each propagation is ONE UPDATE over the org's contacts, run inside the catalog change's
transaction (the signals are sent there), so catalog and contacts never disagree.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import connection, models, transaction
from django.db.models import Case, F, Func, JSONField, Value, When
from django.db.models.functions import Cast, Now
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from contacts.models import Contact
from customization import signals
from customization.catalog import register_tag_counter
from customization.models import CustomField
from customization.rendering import CONTACT_FIELDS, ContactContext, register_contact_loader

_TAG_ARRAY = ArrayField(models.CharField(max_length=64))


def _tag(name: str):
    return Cast(Value(name), models.CharField(max_length=64))


class JSONBDeleteKey(Func):
    """`custom - 'key'`: the object without that key."""

    arg_joiner = " - "
    template = "(%(expressions)s)"
    output_field = JSONField()


@receiver(signals.tag_renamed, dispatch_uid="contacts.tag_renamed")
def rename_tag_on_contacts(sender, org_id: int, old_name: str, new_name: str, **kwargs) -> int:
    """old → new on every contact carrying old; a contact that already had new just loses old."""
    return (
        Contact.objects.for_org(org_id)
        .filter(tags__contains=[old_name])
        .update(
            tags=Case(
                When(
                    tags__contains=[new_name],
                    then=Func(F("tags"), _tag(old_name), function="array_remove", output_field=_TAG_ARRAY),
                ),
                default=Func(
                    F("tags"), _tag(old_name), _tag(new_name), function="array_replace", output_field=_TAG_ARRAY
                ),
            ),
            updated_at=Now(),
        )
    )


@receiver(signals.tag_deleted, dispatch_uid="contacts.tag_deleted")
def remove_tag_from_contacts(sender, org_id: int, name: str, **kwargs) -> int:
    return (
        Contact.objects.for_org(org_id)
        .filter(tags__contains=[name])
        .update(
            tags=Func(F("tags"), _tag(name), function="array_remove", output_field=_TAG_ARRAY),
            updated_at=Now(),
        )
    )


@receiver(signals.custom_field_deleted, dispatch_uid="contacts.custom_field_deleted")
def remove_custom_key_from_contacts(sender, org_id: int, key: str, **kwargs) -> int:
    return (
        Contact.objects.for_org(org_id)
        .filter(custom__has_key=key)
        .update(
            custom=JSONBDeleteKey(F("custom"), Cast(Value(key), models.TextField())),
            updated_at=Now(),
        )
    )


def count_contacts_per_tag(membership, names: list[str]) -> dict[str, int]:
    """One grouped query over the contacts the member can see: unnest their tags, count by name."""
    visible = Contact.objects.for_member(membership).filter(tags__overlap=names).values("tags")
    subquery, params = visible.query.sql_with_params()
    sql = (
        f"SELECT tag, COUNT(*) FROM ({subquery}) AS visible, unnest(visible.tags) AS tag "
        "WHERE tag = ANY(%s) GROUP BY tag"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, list(names)])
        return dict(cursor.fetchall())


def contact_context(membership, contact_id: int) -> ContactContext | None:
    row = Contact.objects.for_member(membership).filter(pk=contact_id).values(*CONTACT_FIELDS, "custom").first()
    if row is None:
        return None
    custom = row.pop("custom") or {}
    return ContactContext(fields=row, custom=custom)


register_tag_counter(count_contacts_per_tag)
register_contact_loader(contact_context)


# --- per-field expression indexes (migration 0004) -------------------------------------------

INDEX_KIND_BY_TYPE = {
    "text": "text",
    "textarea": "text",
    "email": "text",
    "url": "text",
    "number": "number",
    "date": "date",
    "datetime": "datetime",
}


def custom_field_index(org_id: int, field_id: int, key: str, kind: str) -> None:
    """Build or drop the index once the field's transaction has committed (the DDL locks the table
    briefly; it must not run while that transaction holds pending contact writes)."""

    def run():
        with connection.cursor() as cursor:
            cursor.execute("SELECT crm_custom_field_index(%s, %s, %s, %s)", [org_id, field_id, key, kind])

    transaction.on_commit(run)


@receiver(post_save, sender=CustomField, dispatch_uid="contacts.custom_field_index")
def index_new_custom_field(sender, instance: CustomField, created: bool, **kwargs) -> None:
    """Text fields get `crm_custom_text(custom, key)`, numbers and dates their typed value: what the
    compiler filters on. Single/multi selects and phones use containment (the GIN index)."""
    kind = INDEX_KIND_BY_TYPE.get(instance.data_type)
    if created and kind:
        custom_field_index(instance.org_id, instance.pk, instance.key, kind)


@receiver(post_delete, sender=CustomField, dispatch_uid="contacts.custom_field_unindex")
def drop_custom_field_index(sender, instance: CustomField, **kwargs) -> None:
    if instance.data_type in INDEX_KIND_BY_TYPE:
        custom_field_index(instance.org_id, instance.pk, instance.key, "drop")
