"""Tenancy: organizations, who belongs to them, and the one queryset API that scopes data."""

from __future__ import annotations

import zoneinfo

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def validate_region(value: str) -> None:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"{value!r} is not an ISO 3166 region phonenumbers knows.")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone.")


class Organization(models.Model):
    """A tenant. Every tenant row carries `org_id` and every query filters on it."""

    name = models.CharField(max_length=200)
    default_region = models.CharField(
        max_length=2,
        default="US",
        validators=[validate_region],
        help_text="ISO 3166-1 alpha-2 region used to parse phone numbers written without +country.",
    )
    timezone = models.CharField(
        max_length=64,
        default="UTC",
        validators=[validate_timezone],
        help_text="IANA time zone for date-only filters and relative dates.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk})"


class Membership(models.Model):
    """A user's place in an org: a role (what they may change) and a data scope (what they see).

    Invariant: one membership per (org, user).
    """

    class Role(models.TextChoices):
        OWNER = "owner"
        ADMIN = "admin"
        MEMBER = "member"

    class DataScope(models.TextChoices):
        ALL = "all", "All contacts"
        ASSIGNED = "assigned", "Only contacts assigned to them"

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    data_scope = models.CharField(max_length=10, choices=DataScope.choices, default=DataScope.ALL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "user"], name="membership_org_user_uniq")]
        ordering = ["org_id", "id"]

    def __str__(self) -> str:
        return f"{self.user} in {self.org} ({self.role}, {self.data_scope})"

    @property
    def is_admin(self) -> bool:
        """Owners and admins may change the org's catalogs (tags, fields, values)."""
        return self.role in (self.Role.OWNER, self.Role.ADMIN)

    @property
    def sees_only_assigned(self) -> bool:
        return self.data_scope == self.DataScope.ASSIGNED


class TenantQuerySet(models.QuerySet):
    """The one way in for tenant data: `Model.objects.for_member(membership)`.

    Tables whose rows belong to a person (contacts, their opportunities) narrow further
    for assigned-only members by overriding `scope_to_assignee`.
    """

    def for_org(self, org_id: int) -> TenantQuerySet:
        return self.filter(org_id=org_id)

    def for_member(self, membership: Membership) -> TenantQuerySet:
        qs = self.for_org(membership.org_id)
        if membership.sees_only_assigned:
            qs = qs.scope_to_assignee(membership.user_id)
        return qs

    def scope_to_assignee(self, user_id: int) -> TenantQuerySet:
        return self


class TenantModel(models.Model):
    """Base of every tenant table: an `org` and the scoped queryset API."""

    org = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True
