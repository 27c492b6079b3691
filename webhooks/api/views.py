"""`/webhooks`: subscriptions to the change feed, their deliveries and manual retry (owner/admin only).

Thin views over webhooks.services; delivery itself runs on the task queue's workers (webhooks.tasks).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from crm.api.idempotency import idempotent
from crm.api.pagination import LimitOffsetPagination
from crm.api.permissions import IsOrgAdmin
from crm.api.viewsets import OrgScopedViewMixin, OrgScopedViewSet
from webhooks import services
from webhooks.api.serializers import (
    DeliverySerializer,
    WebhookCreatedSerializer,
    WebhookSerializer,
    WebhookWriteSerializer,
)
from webhooks.models import Delivery, Webhook

ADMIN_ONLY = "Owner or admin only (403 for members)."
WEBHOOK_EXAMPLE = {
    "id": 3, "url": "https://hooks.example.com/crm", "events": ["contact.created", "contact.updated"], "view": None,
    "active": True, "disabled_reason": None, "failing_since": None, "cursor": "ZjE6NzozOToyOjA", "created_by": 7,
    "created_at": "2026-12-04T09:30:00Z", "updated_at": "2026-12-04T09:30:00Z",
}  # fmt: skip
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw+3iKbHwKAHs="
DISABLED_EXAMPLE = {
    **WEBHOOK_EXAMPLE, "active": False, "failing_since": "2026-12-01T09:30:00Z",
    "disabled_reason": "Disabled on 2026-12-04 09:31 UTC: Deliveries failed for 72 hours (last attempt: HTTP 503).",
}  # fmt: skip
DELIVERY_EXAMPLE = {
    "id": 118, "webhook": 3, "status": "retrying", "message_id": "msg_Lw2g6bW3n1mF0aYb8YyG5x9Q",
    "entry_count": 2, "first_entry": "ZjE6NzozODowOjkwNTE", "cursor": "ZjE6NzozOToyOjA", "attempts": 2,
    "response_code": 500, "latency_ms": 84, "error": "HTTP 500: upstream unavailable",
    "next_attempt_at": "2026-12-04T09:31:05Z", "created_at": "2026-12-04T09:30:31Z",
    "updated_at": "2026-12-04T09:30:35Z",
}  # fmt: skip
ID_PARAM = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Webhook id.")
DELIVERY_PARAM = OpenApiParameter("delivery_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Delivery id.")


def _is_id(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 18


@extend_schema_view(
    list=extend_schema(summary="List webhooks", description=f"{ADMIN_ONLY} Oldest first. The secret is never shown."),
    retrieve=extend_schema(
        summary="Get a webhook",
        description=f"{ADMIN_ONLY} A disabled one says why in `disabled_reason`.",
        parameters=[ID_PARAM],
        examples=[OpenApiExample("disabled", value=DISABLED_EXAMPLE, response_only=True)],
    ),
    destroy=extend_schema(
        summary="Delete a webhook", description=f"{ADMIN_ONLY} Its deliveries go with it.", parameters=[ID_PARAM]
    ),
)
class WebhookViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, OrgScopedViewSet):
    queryset_model = Webhook
    serializer_class = WebhookSerializer
    permission_classes = [*OrgScopedViewMixin.permission_classes, IsOrgAdmin]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @property
    def error_statuses(self) -> tuple[str, ...]:
        return ("409",) if getattr(self, "action", None) == "retry" else ()

    def refine_queryset(self, qs):
        return qs.order_by("id")

    def check_lookup(self, value: str) -> None:
        if not _is_id(value):
            raise NotFound("No such webhook.")

    @extend_schema(
        summary="Create a webhook",
        description=f"{ADMIN_ONLY} It receives the changes committed from now on, in feed order, in batches POSTed "
        'as `{"type": "changes", "timestamp", "data": [entries as GET /changes shows them], '
        '"next_cursor"}` and signed by the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`, '
        "`webhook-signature` with the `secret`). The `secret` is in this answer only. A target that does not "
        "resolve, or resolves to a private, loopback or link-local address, is a 422.",
        request=WebhookWriteSerializer,
        responses={201: WebhookCreatedSerializer},
        examples=[
            OpenApiExample(
                "contacts created or updated",
                request_only=True,
                value={"url": "https://hooks.example.com/crm", "events": ["contact.created", "contact.updated"]},
            ),
            OpenApiExample(
                "the contacts of a saved view",
                request_only=True,
                value={"url": "https://hooks.example.com/vip", "events": ["contact.*", "opportunity.*"], "view": 12},
            ),
            OpenApiExample(
                "created", response_only=True, status_codes=["201"], value={**WEBHOOK_EXAMPLE, "secret": SECRET_EXAMPLE}
            ),
        ],
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        body = WebhookWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        webhook = services.create(self.membership.org_id, self.membership.user_id, dict(body.validated_data))
        return Response(WebhookCreatedSerializer(webhook).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Change a webhook",
        description=f"{ADMIN_ONLY} What the body names changes. `active: true` resumes a disabled or paused "
        "webhook where it stopped (its failed delivery first, with the same `webhook-id`); `active: false` pauses "
        "it, keeping its place.",
        parameters=[ID_PARAM],
        request=WebhookWriteSerializer,
        responses={200: WebhookSerializer},
        examples=[
            OpenApiExample("resume", request_only=True, value={"active": True}),
            OpenApiExample(
                "move", request_only=True, value={"url": "https://hooks.example.com/v2", "events": ["*"], "view": None}
            ),
            OpenApiExample("changed", response_only=True, value=WEBHOOK_EXAMPLE),
        ],
    )
    def partial_update(self, request, *args, **kwargs):
        webhook = self.get_object()
        body = WebhookWriteSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        webhook = services.update(webhook, dict(body.validated_data))
        return Response(WebhookSerializer(webhook).data)

    def perform_destroy(self, instance):
        instance.delete()

    @extend_schema(
        summary="List a webhook's deliveries",
        description=f"{ADMIN_ONLY} Newest first: each batch sent, its status, attempts, the last answer's status "
        f"code and latency. Succeeded deliveries are kept WEBHOOK_DELIVERY_DAYS (30).",
        parameters=[ID_PARAM],
        responses={200: DeliverySerializer(many=True)},
        examples=[OpenApiExample("a delivery being retried", value=DELIVERY_EXAMPLE, response_only=True)],
    )
    @action(detail=True, methods=["get"], pagination_class=LimitOffsetPagination)
    def deliveries(self, request, pk=None):
        webhook = self.get_object()
        rows = Delivery.objects.for_member(self.membership).filter(webhook_id=webhook.pk).order_by("-id")
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)

    @extend_schema(
        summary="Retry a delivery now",
        description=f"{ADMIN_ONLY} Queues another attempt of a delivery that has not succeeded, now rather than "
        "after its backoff, with the same body and `webhook-id`; a disabled or paused webhook is resumed with it. "
        "202 with the delivery; 409 if it already succeeded.",
        parameters=[ID_PARAM, DELIVERY_PARAM],
        request=None,
        responses={202: DeliverySerializer},
        examples=[
            OpenApiExample(
                "queued", response_only=True, status_codes=["202"],
                value={**DELIVERY_EXAMPLE, "next_attempt_at": "2026-12-04T09:30:40Z"},
            )
        ],
    )  # fmt: skip
    @action(detail=True, methods=["post"], url_path=r"deliveries/(?P<delivery_id>[^/.]+)/retry")
    def retry(self, request, pk=None, delivery_id=None):
        webhook = self.get_object()
        rows = Delivery.objects.for_member(self.membership).filter(webhook_id=webhook.pk)
        delivery = rows.filter(pk=delivery_id).first() if _is_id(delivery_id) else None
        if delivery is None:
            raise NotFound("No such delivery of this webhook.")
        delivery = services.retry(webhook, delivery)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
