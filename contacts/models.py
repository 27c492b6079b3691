"""Contacts, their tags and custom values, their opportunities, and the org's saved views.

Invariants (kept by `contacts.normalize` and `contacts.services` on every write path, and by
the database):
- email is validated and unique per org, compared by `email_key` (its case folding,
  customization.text.fold);
- phone is E.164 or null; a contact's tags are rows of `ContactTag` pointing at the org's tag
  catalog, its custom values rows of `FieldValue` pointing at the org's field definitions, each
  in its type's canonical JSON form (so renaming a tag or deleting a field touches no contact);
- `name` is the display name; `folded` holds the case-folded built-in text fields that filters
  compare, `search_text` the folded, accent-free haystack `q` searches.
Every table here has `org_id`; the tables between tenant rows reference `(org_id, id)`, so a
row can only point inside its own org.
"""

from __future__ import annotations

import functools
import json

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import connection, models
from django.db.models import Q
from django.utils import timezone

from customization.models import CustomField, Tag
from orgs.models import Membership, Organization, TenantModel, TenantQuerySet

MULTI_SELECT = "multi_select"


class ContactQuerySet(TenantQuerySet):
    def scope_to_assignee(self, user_id: int):
        return self.filter(assigned_to_id=user_id)  # as `visible_contact` reads one contact


def visible_contact(membership: Membership, contact_id: int) -> Contact | None:
    """The contact `Contact.objects.for_member(membership).get(pk=contact_id)` finds, or None, with
    its tags and custom values, read by one fixed statement prepared once per connection
    (crm.db_postgresql). `GET /contacts/{id}` runs it on every request: built by the ORM, that query
    was a third of the request's CPU, and PostgreSQL planned it anew each time. The scope is
    `for_member`'s: the org (also the row-level security's), and for an assigned-only member their
    own contacts; a test holds the two to the same answers. The columns only filters read
    (`folded`, `search_text`) are left deferred."""
    sql, names = _visible_contact_statement(membership.sees_only_assigned)
    scope = [membership.org_id, contact_id] + ([membership.user_id] if membership.sees_only_assigned else [])
    with connection.prepared_cursor() as cursor:
        cursor.execute(sql, [membership.org_id, contact_id] * 2 + scope)
        row = cursor.fetchone()
    if row is None:
        return None
    contact = Contact.from_db(connection.alias, names, row[:-1])
    _attach([contact], row[-1])
    return contact


@functools.cache
def _visible_contact_statement(assigned_only: bool) -> tuple[str, list[str]]:
    fields = [f for f in Contact._meta.concrete_fields if f.attname not in ("folded", "search_text")]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    scope = "org_id = %s AND id = %s" + (" AND assigned_to_id = %s" if assigned_only else "")
    # Bound to scalars, not to TAGS_AND_VALUES' arrays: PostgreSQL then keeps one generic plan;
    # with arrays of unknown length it planned the whole statement again on every request.
    tags_and_values = _tags_and_values("org_id = %s AND contact_id = %s")
    sql = f"SELECT {columns}, ({tags_and_values}) FROM {Contact._meta.db_table} WHERE {scope}"
    return sql, [f.attname for f in fields]


class Contact(TenantModel):
    # No single-column org index: every index of this hot table already starts with org_id.
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    name = models.CharField(max_length=201, blank=True, default="")
    email = models.CharField(max_length=254, null=True, blank=True)
    email_key = models.TextField(null=True, blank=True, editable=False)  # fold(email): uniqueness, look-ups
    phone = models.CharField(max_length=20, null=True, blank=True)
    company = models.CharField(max_length=200, blank=True, default="")
    source = models.CharField(max_length=100, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    dnc = models.BooleanField("do not contact", default=False)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    folded = models.JSONField(default=dict, blank=True, editable=False)  # {field: fold(value)}, non-empty text fields
    search_text = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ContactQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["org", "-created_at", "-id"], name="contact_org_created"),
            models.Index(fields=["org", "assigned_to", "-created_at", "-id"], name="contact_org_assignee_created"),
            models.Index(fields=["org", "phone"], name="contact_org_phone"),
            GinIndex(fields=["search_text"], opclasses=["gin_trgm_ops"], name="contact_search_trgm"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["org", "email_key"], name="contact_org_email_uniq"),
            # The target of the (org_id, contact_id) foreign keys of the tables below.
            models.UniqueConstraint(fields=["org", "id"], name="contact_org_id_uniq"),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"Contact #{self.pk}"

    def forget_tags_and_custom(self) -> None:
        """After a write of them: the next read of `tags` or `custom` reads them again."""
        self.__dict__.pop("tag_names", None)
        self.__dict__.pop("custom_values", None)

    def refresh_from_db(self, *args, **kwargs):
        self.forget_tags_and_custom()
        super().refresh_from_db(*args, **kwargs)

    @property
    def tags(self) -> list[str]:
        """Tag names in name order (as attached by `attach_tags_and_custom`, or read now)."""
        if self.pk is not None and not hasattr(self, "tag_names"):
            attach_tags_and_custom([self])
        return list(getattr(self, "tag_names", []))

    @property
    def custom(self) -> dict:
        """Custom values by field key, in canonical JSON form (as attached, or read now)."""
        if self.pk is not None and not hasattr(self, "custom_values"):
            attach_tags_and_custom([self])
        values = getattr(self, "custom_values", {})
        return {key: list(value) if isinstance(value, list) else value for key, value in values.items()}


# One statement for the tags and custom values of many contacts, run prepared (it is run on every
# contact read; planning its joins under row-level security cost more than running it). It answers
# one JSON document, {contact id: [tag names, {key: value}]}: one parse for a page instead of one per
# value (a page of 50 contacts holds some 400 tags and values).
# Each side is read first, alone, by its primary key (org_id, contact_id, …): joined straight to the
# tag or field catalog, the planner preferred the (org, field, created_at) index with the page's ids
# as a filter, which reads every value row of the org (124 ms for a page at 100k against 1.3 ms).
# Tag names are in code point order (COLLATE "C", as Python sorts them); values in field order, a
# multi-select's options in their position order.
def _tags_and_values(rows: str) -> str:
    """The statement below for the contacts whose tag and value rows match `rows`."""
    return f"""
WITH tag_rows AS MATERIALIZED (
    SELECT org_id, contact_id, tag_id FROM contacts_contacttag
    WHERE {rows}
), value_rows AS MATERIALIZED (
    SELECT org_id, contact_id, field_id, position, value FROM contacts_fieldvalue
    WHERE {rows}
), tags AS (
    SELECT ct.contact_id, json_agg(t.name ORDER BY t.name COLLATE "C") AS names
    FROM tag_rows ct JOIN customization_tag t ON t.org_id = ct.org_id AND t.id = ct.tag_id
    GROUP BY ct.contact_id
), fields AS (
    SELECT fv.contact_id, fv.field_id, f.key,
           CASE WHEN f.data_type = '{MULTI_SELECT}' THEN jsonb_agg(fv.value ORDER BY fv.position)
                ELSE (array_agg(fv.value))[1] END AS value
    FROM value_rows fv JOIN customization_customfield f ON f.org_id = fv.org_id AND f.id = fv.field_id
    GROUP BY fv.contact_id, fv.field_id, f.key, f.data_type
), custom AS (
    SELECT contact_id, json_object_agg(key, value ORDER BY field_id) AS items FROM fields GROUP BY contact_id
)
SELECT json_object_agg(contact_id, json_build_array(coalesce(names, '[]'), coalesce(items, '{{}}')))::text
FROM tags FULL JOIN custom USING (contact_id)
"""


TAGS_AND_VALUES = _tags_and_values("org_id = ANY(%s::bigint[]) AND contact_id = ANY(%s::bigint[])")


def attach_tags_and_custom(contacts: list[Contact]) -> list[Contact]:
    """Read the tags and custom values of `contacts` (saved) in one statement for all of them, and
    keep them on each (`tag_names`, `custom_values`) for `Contact.tags` and `Contact.custom`."""
    if not contacts:
        return contacts
    with connection.prepared_cursor() as cursor:
        org_ids, contact_ids = sorted({c.org_id for c in contacts}), [c.pk for c in contacts]
        cursor.execute(TAGS_AND_VALUES, [org_ids, contact_ids, org_ids, contact_ids])
        _attach(contacts, cursor.fetchone()[0])
    return contacts


def _attach(contacts: list[Contact], document: str | None) -> None:
    """Keep on each contact its tags and custom values from TAGS_AND_VALUES' document."""
    found = json.loads(document) if document else {}
    for contact in contacts:
        contact.tag_names, contact.custom_values = found.get(str(contact.pk), ([], {}))


class ContactRowQuerySet(TenantQuerySet):
    """Rows that belong to a contact: an assigned-only member sees those of their contacts."""

    def scope_to_assignee(self, user_id: int):
        return self.filter(contact__assigned_to_id=user_id)


class ContactTag(TenantModel):
    """A tag on a contact: (org, contact, catalog tag). Renaming the tag renames it everywhere at once;
    deleting the tag or the contact deletes the row (foreign keys ON DELETE CASCADE, migration 0006).
    `created_at` is the contact's (it never changes): a tag's contacts come in list order from
    `contacttag_by_tag`, so a page of a tag reads that index alone (contacts/paging.py)."""

    pk = models.CompositePrimaryKey("org_id", "contact_id", "tag_id")
    # The foreign keys are (org_id, contact_id) and (org_id, tag_id), created in SQL: Django cannot
    # declare composite ones. on_delete is the database's.
    org = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    contact = models.ForeignKey(
        "Contact", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    tag = models.ForeignKey(Tag, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False)
    created_at = models.DateTimeField()  # the contact's

    objects = ContactRowQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["org", "tag", "-created_at", "-contact"], name="contacttag_by_tag")]


class FieldValue(TenantModel):
    """One stored item of a contact's custom value: a value, or one option of a multi_select
    (`position` keeps their order). `value` is the canonical JSON form; exactly one typed column
    (customization.field_types.StoredItem) is what filters compare and sort on, through a fixed
    set of B-tree indexes (org_id, field_id, <typed value>, contact_id) whatever the number of orgs
    and fields. `text_key` is the first 64 characters of `folded` (an index entry's size is bounded).
    `created_at` is the contact's: `fieldvalue_created` walks a field's values in list order.
    """

    pk = models.CompositePrimaryKey("org_id", "contact_id", "field_id", "position")
    org = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    contact = models.ForeignKey(
        "Contact", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    field = models.ForeignKey(
        CustomField, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    position = models.SmallIntegerField(default=0)
    value = models.JSONField()
    folded = models.TextField(null=True, db_collation="C")
    text_key = models.TextField(null=True, db_collation="C")
    number = models.FloatField(null=True)
    day = models.DateField(null=True)
    moment = models.DateTimeField(null=True)
    created_at = models.DateTimeField()  # the contact's

    objects = ContactRowQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["org", "field", column, "contact"], condition=Q(**{f"{column}__isnull": False}),
                name=f"fieldvalue_{column}",
            )
            for column in ("text_key", "number", "day", "moment")
        ] + [
            models.Index(
                fields=["org", "field", "-created_at", "-contact"], include=["text_key", "number", "day", "moment"],
                name="fieldvalue_created",
            )
        ]  # fmt: skip


# The share of the contacts table's pages in `contacts_sample` (migration 0007).
SAMPLE_PERCENT = 1


class ContactSample(models.Model):
    """A fixed sample of contacts, for `count=estimate` (contacts.paging): the view `contacts_sample`
    is `TABLESAMPLE SYSTEM (1) REPEATABLE (0)` of the contacts table, read with the caller's own
    row-level security (security_invoker), so it holds the current org's rows on the sampled pages."""

    id = models.BigIntegerField(primary_key=True)

    class Meta:
        managed = False
        db_table = "contacts_sample"

    def __str__(self) -> str:
        return str(self.id)


class OpportunityQuerySet(TenantQuerySet):
    def scope_to_assignee(self, user_id: int):
        # An assigned-only member works on the opportunities of the contacts assigned to them.
        return self.filter(contact__assigned_to_id=user_id)


class Opportunity(TenantModel):
    """A deal with one contact. Invariant: `contact.org_id == org_id`."""

    class Status(models.TextChoices):
        OPEN = "open"
        WON = "won"
        LOST = "lost"
        ABANDONED = "abandoned"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="opportunities")
    name = models.CharField(max_length=200)
    pipeline = models.CharField(max_length=100, blank=True, default="")
    stage = models.CharField(max_length=100, blank=True, default="")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    value = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OpportunityQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "opportunities"
        indexes = [
            models.Index(fields=["org", "-created_at", "-id"], name="opportunity_org_created"),
            models.Index(fields=["contact", "-created_at"], name="opportunity_contact_created"),
        ]

    def __str__(self) -> str:
        return self.name


class SmartListView(TenantModel):
    """A saved smart list shared by the org: a filter `query`, free text `q`, `sort`, `columns`.

    The query is validated by the search compiler when saved; a view whose custom field was
    deleted later still loads, and applying it answers 422 naming the missing field.
    """

    name = models.CharField(max_length=100)
    query = models.JSONField(default=dict, blank=True)
    q = models.CharField(max_length=200, blank=True, default="")
    sort = models.JSONField(default=list, blank=True)
    columns = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


# --- Async imports (jobs.Job of kind `import`) ---------------------------------------------------
# Each table's key starts with (org_id, job_id); the foreign keys to the job are (org_id, job_id),
# created in SQL (migration 0009), ON DELETE CASCADE.


class ImportJobRow(TenantModel):
    """A row of one async import: keys lead with (org_id, job_id)."""

    org = models.ForeignKey(
        Organization, on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )
    job = models.ForeignKey(
        "jobs.Job", on_delete=models.DO_NOTHING, related_name="+", db_constraint=False, db_index=False
    )

    class Meta:
        abstract = True


class ImportUpload(ImportJobRow):
    """An async import's body, kept in the database in parts of UPLOAD_PART_BYTES, so web and
    worker machines share nothing but the database. Deleted once the job has finished."""

    pk = models.CompositePrimaryKey("org_id", "job_id", "part")
    part = models.IntegerField()
    data = models.BinaryField()


class ImportIssue(ImportJobRow):
    """A row of an async import that failed or conflicted, as given, with its reasons: the rows
    of the job's error file (`GET /jobs/{id}/errors`)."""

    pk = models.CompositePrimaryKey("org_id", "job_id", "row")
    row = models.BigIntegerField()
    outcome = models.CharField(max_length=10)  # failed | conflict
    contact_id = models.BigIntegerField(null=True)  # a conflict's contact
    matched_on = models.CharField(max_length=10, null=True)
    data = models.JSONField(null=True)  # the row as given (None: not an object)
    errors = models.JSONField(default=list)  # [{"field", "message", "value"}]


class ContactJournal(ImportJobRow):
    """What a job (an async import, a bulk action) did to one contact, for undo: `created`, or the
    contact's state before the job first touched it and after it last did (contacts.journal). A bulk
    action's rows are also its selection, written when it starts; `before`/`after` hold only the
    parts it touches, and stay null for a contact it left as it was."""

    pk = models.CompositePrimaryKey("org_id", "job_id", "contact_id")
    contact_id = models.BigIntegerField()  # no foreign key: the journal outlives a deleted contact
    created = models.BooleanField(default=False)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    undone = models.BooleanField(default=False)

    class Meta:
        db_table = "contacts_importjournal"  # its name when only imports kept one


class TrashedContact(TenantModel):
    """A contact in the trash (DESIGN §4 "Nothing is lost"): its row left the contacts table, so
    no read path, count, index or email uniqueness sees it, and this row keeps all of it: the
    contact's columns, its tags, custom values and opportunities (`snapshot`, contacts.trash), to
    be restored whole, with the same id, until `TRASH_DAYS` have passed."""

    pk = models.CompositePrimaryKey("org_id", "contact_id")
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact_id = models.BigIntegerField()  # the id it had, and has again once restored
    name = models.CharField(max_length=201, blank=True, default="")
    email = models.CharField(max_length=254, null=True, blank=True)
    assigned_to_id = models.BigIntegerField(null=True)  # scope: an assigned-only member's trash
    deleted_at = models.DateTimeField(default=timezone.now)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job_id = models.BigIntegerField(null=True)  # the bulk action or undo that trashed it
    merged_into = models.BigIntegerField(null=True)  # the survivor of a merge (contacts.merge)
    merge_id = models.BigIntegerField(null=True)
    snapshot = (
        models.JSONField()
    )  # {"contact": {column: value}, "tags": [ids], "values": [...], "opportunities": [...]}

    objects = ContactQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["org", "-deleted_at", "-contact_id"], name="trash_org_deleted")]

    def __str__(self) -> str:
        return self.name or self.email or f"Contact #{self.contact_id}"


class DuplicateDismissal(TenantModel):
    """A "not the same person" answer (contacts.duplicates): a group of contacts the duplicate finder no
    longer offers while its members are all within `ids` (sorted, distinct, 2..10). A contact that
    joins the group later makes it reappear, with that contact. The match keys are SQL functions
    over the contact's columns (migration 0013), so no contact column is added for them."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    ids = ArrayField(models.BigIntegerField())
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "ids"], name="dismissal_org_ids_uniq")]

    def __str__(self) -> str:
        return f"Not duplicates: {', '.join(map(str, self.ids))}"


class ContactMerge(TenantModel):
    """One `POST /contacts/merge` (contacts.merge): what its undo needs. `before` and `after` hold
    the survivor's values (API form: built-in names, `tags`, `custom.<key>`) of the fields the merge
    set; `opportunities` which opportunity came from which merged contact."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    into_id = models.BigIntegerField()  # the survivor
    from_ids = ArrayField(models.BigIntegerField())  # the merged contacts, now in the trash
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    before = models.JSONField(default=dict)
    after = models.JSONField(default=dict)
    opportunities = models.JSONField(default=dict)  # {opportunity id: the contact it came from}
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "into_id"], name="merge_org_into")]

    def __str__(self) -> str:
        return f"Merge #{self.pk} into {self.into_id}"
