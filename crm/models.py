"""Records the API plumbing keeps: idempotency keys."""

from django.conf import settings
from django.db import models

from orgs.models import TenantModel


class IdempotencyRecord(TenantModel):
    """The first answer to a POST sent with `Idempotency-Key`, replayed to retries for 24 hours.

    Invariant: one record per (org, user, key); `request_hash` covers method, path and body,
    so the same key with another body is refused rather than replayed.
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight"
        DONE = "done"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=State.choices, default=State.IN_FLIGHT)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    response_content_type = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "user", "key"], name="idempotency_org_user_key_uniq")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]
