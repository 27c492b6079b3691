"""Contacts, their opportunities, and the org's saved smart-list views.

Invariants (kept by `contacts.normalize` on every write path, and by the database):
- email is validated and unique per org, compared lowercased (unique index on lower(email));
- phone is E.164 or null; tags are trimmed, lowercased, unique within the contact, and
  present in the org's tag catalog; `custom` holds only keys defined as the org's custom
  fields, each in its type's canonical JSON form;
- `name` is the display name; `search_text` is the lowercased haystack `q` searches.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from orgs.models import Organization, TenantModel, TenantQuerySet


class ContactQuerySet(TenantQuerySet):
    def scope_to_assignee(self, user_id: int):
        return self.filter(assigned_to_id=user_id)


class Contact(TenantModel):
    # No single-column org index: every index of this hot table already starts with org_id.
    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+", db_index=False)
    first_name = models.CharField(max_length=100, blank=True, default="")
    last_name = models.CharField(max_length=100, blank=True, default="")
    name = models.CharField(max_length=201, blank=True, default="")
    email = models.CharField(max_length=254, null=True, blank=True)
    phone = models.CharField(max_length=20, null=True, blank=True)
    company = models.CharField(max_length=200, blank=True, default="")
    source = models.CharField(max_length=100, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    tags = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    dnc = models.BooleanField("do not contact", default=False)
    custom = models.JSONField(default=dict, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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
            GinIndex(fields=["tags"], name="contact_tags_gin"),
            GinIndex(fields=["custom"], opclasses=["jsonb_path_ops"], name="contact_custom_gin"),
            GinIndex(fields=["search_text"], opclasses=["gin_trgm_ops"], name="contact_search_trgm"),
        ]
        constraints = [
            models.UniqueConstraint("org", Lower("email"), name="contact_org_email_uniq"),
        ]

    def __str__(self) -> str:
        return self.name or self.email or self.phone or f"Contact #{self.pk}"


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
