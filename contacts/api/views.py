"""Contacts and opportunities endpoints: thin viewsets over the scoped queryset API."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.response import Response

from contacts import trash
from contacts.api.filters import ContactFilterSet, OpportunityFilterSet
from contacts.api.pagination import ContactPagination
from contacts.api.serializers import ContactSerializer, OpportunitySerializer
from contacts.models import Contact, Opportunity, visible_contact
from contacts.normalize import ContactNormalizer
from contacts.services import create_contact, update_contact
from crm.api.idempotency import idempotent
from crm.api.pagination import LimitOffsetPagination
from crm.api.viewsets import OrgScopedModelViewSet

CONTACT_EXAMPLE = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "+44 20 7946 0958",
    "company": "Analytical Engines Ltd",
    "source": "webinar",
    "tags": ["replied-interested", "vip"],
    "dnc": False,
    "custom": {},
}


@extend_schema_view(
    list=extend_schema(summary="List contacts", description="Filters combine with AND."),
    create=extend_schema(
        summary="Create a contact", examples=[OpenApiExample("contact", value=CONTACT_EXAMPLE, request_only=True)]
    ),
    partial_update=extend_schema(summary="Update a contact (only the fields given)"),
    destroy=extend_schema(
        summary="Move a contact to the trash",
        description="The contact leaves every list, search, count and export, with its tags, custom values and "
        "opportunities kept in the trash (`GET /contacts/trash`) for `TRASH_DAYS`; `POST /contacts/{id}/restore` "
        "brings it back whole. Its email no longer blocks a new contact.",
    ),
)
class ContactViewSet(OrgScopedModelViewSet):
    queryset_model = Contact
    serializer_class = ContactSerializer
    filterset_class = ContactFilterSet
    pagination_class = ContactPagination
    error_statuses = ("409",)

    def refine_queryset(self, qs):
        if self.request.method == "PATCH":
            # Locked before it is read: the derived columns (name, search_text, …) are computed from
            # this row, and a concurrent write of other fields waits instead of being overwritten.
            return qs.select_for_update(of=("self",))
        return qs

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.method not in ("GET", "HEAD", "OPTIONS") and hasattr(self.request, "membership"):
            context["normalizer"] = ContactNormalizer.for_member(self.request.membership)
        return context

    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    @extend_schema(
        summary="Get a contact",
        description="The id of a contact merged into another (still in the trash) answers the survivor.",
    )
    def retrieve(self, request, *args, **kwargs):
        # Not through get_object(): `visible_contact` is the scoped queryset's `get(pk=…)` as one
        # prepared statement (this is the API's most frequent request; docs/decisions.md).
        raw = str(self.kwargs["pk"])
        contact_id = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
        contact = visible_contact(self.membership, contact_id) if contact_id else None
        if contact is None and contact_id:
            survivor = trash.survivor_of(self.membership, contact_id)
            contact = visible_contact(self.membership, survivor) if survivor else None
        if contact is None:
            raise Http404
        self.check_object_permissions(request, contact)
        return Response(self.get_serializer(contact).data)

    def perform_destroy(self, instance):
        trash.move_to_trash(instance.org_id, [instance.pk], deleted_by=self.request.user.pk)

    def perform_create(self, serializer):
        serializer.instance = create_contact(
            self.membership.org_id,
            serializer.validated_data,
            self.membership,
            serializer.context["normalizer"].custom_fields,
        )

    def perform_update(self, serializer):
        serializer.instance = update_contact(
            serializer.instance,
            serializer.validated_data,
            self.membership,
            serializer.context["normalizer"].custom_fields,
        )

    @extend_schema(summary="A contact's opportunities", responses=OpportunitySerializer(many=True), filters=False)
    @action(
        detail=True,
        methods=["get"],
        filterset_class=None,
        pagination_class=LimitOffsetPagination,
        url_path="opportunities",
    )
    def opportunities(self, request, pk=None):
        contact = self.get_object()
        opportunities = Opportunity.objects.for_member(self.membership).filter(contact=contact)
        page = self.paginate_queryset(opportunities)
        return self.get_paginated_response(OpportunitySerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(summary="List opportunities"),
    create=extend_schema(
        summary="Create an opportunity",
        examples=[
            OpenApiExample(
                "deal",
                request_only=True,
                value={
                    "contact": 1,
                    "name": "Annual plan",
                    "pipeline": "sales",
                    "stage": "proposal",
                    "status": "open",
                    "value": "1500.00",
                    "currency": "USD",
                },
            )
        ],
    ),
    retrieve=extend_schema(summary="Get an opportunity"),
    partial_update=extend_schema(summary="Update an opportunity"),
    destroy=extend_schema(summary="Delete an opportunity"),
)
class OpportunityViewSet(OrgScopedModelViewSet):
    queryset_model = Opportunity
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilterSet

    def refine_queryset(self, qs):
        return qs.order_by("-created_at", "-id")

    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)

    def perform_create(self, serializer):
        serializer.save(org_id=self.membership.org_id)
