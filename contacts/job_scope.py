"""Whom a contacts job (an async import, a bulk action) acts as: its creator's validation and
scope, read again at each step, so a member whose role or scope changed meanwhile gets the new
one, and one who left ends the job. Staff in the admin (`params["staff"]`) act on the whole org,
like the admin's other writes."""

from __future__ import annotations

from contacts.normalize import ContactNormalizer
from jobs.errors import JobFailed
from jobs.models import Job
from orgs.models import Membership, Organization


def normalizer_for(job: Job) -> ContactNormalizer:
    if job.params.get("staff"):
        return ContactNormalizer.for_org(Organization.objects.get(pk=job.org_id))
    membership = (
        Membership.objects.select_related("org", "user").filter(org_id=job.org_id, user_id=job.created_by_id).first()
    )
    if membership is None:
        raise JobFailed("The job's creator is no longer a member of the organization.", "creator_gone")
    return ContactNormalizer.for_member(membership)
