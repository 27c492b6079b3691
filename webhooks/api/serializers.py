"""Request and response shapes of `/webhooks` (DESIGN §4 "Change feed and webhooks")."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from changes import feed
from crm.api.serializer_fields import ClosedSerializer, StrictCharField, StrictChoiceField, StrictModelSerializer
from webhooks.events import MAX_EVENTS, NAMES
from webhooks.models import URL_MAX_LENGTH, Delivery, Webhook

URL_HELP = (
    "Where deliveries are POSTed: an `https://` (or `http://`) URL whose host resolves to public addresses only "
    "(private, loopback and link-local ones are refused, 422; checked again at every delivery)."
)
EVENTS_HELP = (
    "`<object>.<event>` of the change feed's entries (`contact.created`, `opportunity.deleted`, `tag.updated`, …), "
    "`<object>.*` for every event of an object, or `*` for everything. Objects: contact, opportunity, tag, "
    "custom_field, view."
)
VIEW_HELP = (
    "Only changes of the contacts in this saved view (their own and their opportunities'), as the view selects "
    "them when a batch is sent; no other object's changes. Null: the whole org."
)


class WebhookWriteSerializer(ClosedSerializer):
    url = StrictCharField(max_length=URL_MAX_LENGTH, help_text=URL_HELP)
    events = serializers.ListField(
        child=StrictChoiceField(NAMES), min_length=1, max_length=MAX_EVENTS, help_text=EVENTS_HELP
    )
    view = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2**63 - 1, help_text=VIEW_HELP
    )
    active = serializers.BooleanField(
        required=False,
        help_text="Deliver or not (default true). `true` on a disabled or paused webhook resumes it where it "
        "stopped; `false` pauses it, keeping its place.",
    )


class WebhookSerializer(StrictModelSerializer):
    events = serializers.ListField(child=StrictChoiceField(NAMES), help_text=EVENTS_HELP)
    view = serializers.IntegerField(source="view_id", allow_null=True, help_text=VIEW_HELP)
    disabled_reason = serializers.SerializerMethodField(
        help_text="Why deliveries stopped (failing for WEBHOOK_DISABLE_AFTER_HOURS, its view deleted, …); null "
        "when active or paused by a PATCH."
    )
    cursor = serializers.SerializerMethodField(
        help_text="The change-feed position it has delivered through: entries after it are still to send "
        "(`GET /changes?cursor=` reads them, unfiltered)."
    )
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True, help_text="The user who created it.")

    class Meta:
        model = Webhook
        fields = [
            "id", "url", "events", "view", "active", "disabled_reason", "failing_since", "cursor", "created_by",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {"failing_since": {"help_text": "When the current run of failed attempts began; null if none."}}

    def get_disabled_reason(self, webhook: Webhook) -> str | None:
        return webhook.disabled_reason or None

    def get_cursor(self, webhook: Webhook) -> str:
        return feed.encode_cursor(webhook.org_id, webhook.position)


class WebhookCreatedSerializer(WebhookSerializer):
    secret = StrictCharField(
        help_text="The signing secret (`whsec_` + base64), returned here only: keep it to verify the "
        "`webhook-signature` of deliveries (Standard Webhooks)."
    )

    class Meta(WebhookSerializer.Meta):
        fields = [*WebhookSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class DeliverySerializer(StrictModelSerializer):
    webhook = serializers.IntegerField(source="webhook_id")
    message_id = StrictCharField(help_text="The `webhook-id` header: the same on every attempt of this delivery.")
    first_entry = serializers.SerializerMethodField(help_text="The `id` of the batch's first feed entry.")
    cursor = serializers.SerializerMethodField(
        help_text="The feed position the webhook moves to once this batch is delivered (its `next_cursor`)."
    )

    class Meta:
        model = Delivery
        fields = [
            "id", "webhook", "status", "message_id", "entry_count", "first_entry", "cursor", "attempts",
            "response_code", "latency_ms", "error", "next_attempt_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields
        extra_kwargs = {
            "status": {
                "help_text": "pending (being attempted), retrying (the last attempt failed; next at "
                "`next_attempt_at`), succeeded (2xx), failed (given up: the webhook was disabled)."
            },
            "entry_count": {"help_text": "Feed entries in the batch."},
            "attempts": {"help_text": "Attempts made so far."},
            "response_code": {"help_text": "The HTTP status of the last attempt; null when no answer came."},
            "latency_ms": {"help_text": "How long the last attempt took, in milliseconds."},
            "error": {
                "help_text": "Why the last attempt failed (refused target, timeout, `HTTP 500: …`); empty on success."
            },
            "next_attempt_at": {"help_text": "When it is attempted next (retrying, pending); null otherwise."},
        }

    @extend_schema_field(serializers.CharField())
    def get_first_entry(self, delivery: Delivery) -> str:
        return feed.encode_cursor(delivery.org_id, delivery.first)

    @extend_schema_field(serializers.CharField())
    def get_cursor(self, delivery: Delivery) -> str:
        return feed.encode_cursor(delivery.org_id, delivery.last)
