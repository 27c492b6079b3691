"""The trash: `GET /contacts/trash`, `POST /contacts/{id}/restore`, `DELETE /contacts/trash/{id}`.

Any role sees and restores the trashed contacts it could see alive (an assigned-only member: those
assigned to them); purging one now is for an owner or admin. The work is contacts.trash's.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.response import Response

from contacts import merge, trash
from contacts.api.serializers import ContactSerializer
from contacts.models import TrashedContact
from crm.api.pagination import LimitOffsetPagination
from crm.api.serializer_fields import ClosedSerializer, StrictCharField, StrictModelSerializer
from crm.api.viewsets import OrgScopedViewMixin
from crm.errors import NotFound

_ID_PARAM = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Contact id.")


class TrashedContactSerializer(StrictModelSerializer):
    id = serializers.IntegerField(source="contact_id", help_text="The contact's id (the same once restored).")
    name = StrictCharField()
    email = StrictCharField(allow_null=True)
    phone = serializers.SerializerMethodField()
    company = serializers.SerializerMethodField()
    tag_count = serializers.SerializerMethodField()
    opportunity_count = serializers.SerializerMethodField()
    assigned_to = serializers.IntegerField(source="assigned_to_id", allow_null=True)
    deleted_by = serializers.IntegerField(source="deleted_by_id", allow_null=True, help_text="The user who deleted it.")
    job = serializers.IntegerField(source="job_id", allow_null=True, help_text="The bulk action that trashed it.")
    merged_into = serializers.IntegerField(
        allow_null=True, help_text="The contact it was merged into (`GET /contacts/{id}` of it answers that one)."
    )
    purge_at = serializers.SerializerMethodField(help_text="When it is deleted for good (`TRASH_DAYS` after).")

    class Meta:
        model = TrashedContact
        fields = [
            "id", "name", "email", "phone", "company", "tag_count", "opportunity_count", "assigned_to",
            "deleted_at", "deleted_by", "job", "merged_into", "purge_at",
        ]  # fmt: skip
        extra_kwargs = {"deleted_at": {"read_only": True}}

    def get_phone(self, entry) -> str | None:
        return entry.snapshot["contact"].get("phone")

    def get_company(self, entry) -> str:
        return entry.snapshot["contact"].get("company") or ""

    def get_tag_count(self, entry) -> int:
        return len(entry.snapshot["tags"])

    def get_opportunity_count(self, entry) -> int:
        return len(entry.snapshot["opportunities"])

    def get_purge_at(self, entry) -> dt.datetime:
        return entry.deleted_at + dt.timedelta(days=settings.TRASH_DAYS)


TRASHED_EXAMPLE = {
    "id": 42, "name": "Ada Lovelace", "email": "ada@example.com", "phone": "+442079460958",
    "company": "Analytical Engines Ltd", "tag_count": 2, "opportunity_count": 1, "assigned_to": None,
    "deleted_at": "2026-12-01T10:00:00Z", "deleted_by": 7, "job": None, "merged_into": None,
    "purge_at": "2026-12-31T10:00:00Z",
}  # fmt: skip


class TrashListView(OrgScopedViewMixin, ListAPIView):
    queryset_model = TrashedContact
    serializer_class = TrashedContactSerializer
    pagination_class = LimitOffsetPagination

    def refine_queryset(self, qs):
        return qs.order_by("-deleted_at", "-contact_id")

    @extend_schema(
        summary="List the trash",
        description="The org's deleted contacts, most recently deleted first, with who deleted them and when "
        "they are purged. An assigned-only member sees those assigned to them.",
        examples=[OpenApiExample("trash", value=TRASHED_EXAMPLE, response_only=True)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class TrashedContactView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = TrashedContact
    serializer_class = TrashedContactSerializer

    @extend_schema(
        summary="Purge a contact from the trash now",
        description="Owner or admin. Deletes the trashed contact, its tags, custom values and opportunities "
        "for good (otherwise done `TRASH_DAYS` after the delete). 404 if it is not in the trash.",
        parameters=[_ID_PARAM],
        request=None,
        responses={204: None},
    )
    def delete(self, request, pk):
        if not self.membership.is_admin:
            raise PermissionDenied("Only an owner or admin can purge the trash.")
        trash.purge(self.membership, _contact_id(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RestoreRequestSerializer(ClosedSerializer):
    merge_into = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Restore it by merging it into this live contact (typically the `existing_id` of a 409): it "
        "comes back without its email and is merged at once, as `POST /contacts/merge` would; the answer is the "
        "survivor, with `merge_id`.",
    )


class RestoredContactSerializer(ContactSerializer):
    merge_id = serializers.IntegerField(required=False, help_text="Only with `merge_into`: the merge's id.")

    absent_in_responses = ("merge_id",)

    def to_representation(self, instance):
        body = super().to_representation(instance)
        if getattr(instance, "merge_id", None) is not None:
            body["merge_id"] = instance.merge_id
        return body


class ContactRestoreView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = TrashedContact
    serializer_class = RestoreRequestSerializer
    error_statuses = ("409",)

    @extend_schema(
        summary="Restore a contact from the trash",
        description="Brings the contact back whole, under its id: its fields, tags, custom values and "
        "opportunities (tags and custom fields the org deleted since are not brought back). 404 if it is "
        "not in the trash (or not visible to the caller); 409 `not_in_trash` for a live contact; 409 "
        "`duplicate_email` with `existing_id` when a live "
        "contact has taken its email meanwhile: then restore it with `merge_into` to merge the two. The body is "
        "optional.",
        parameters=[_ID_PARAM],
        request=RestoreRequestSerializer,
        responses=RestoredContactSerializer,
        examples=[OpenApiExample("into the contact that took its email", value={"merge_into": 57}, request_only=True)],
    )
    def post(self, request, pk):
        contact_id = _contact_id(pk)
        body = RestoreRequestSerializer(data=request.data if request.data else {})  # the body is optional
        body.is_valid(raise_exception=True)
        context = self.get_serializer_context()
        if "merge_into" in body.validated_data:
            survivor, merge_id = merge.restore_into(self.membership, contact_id, body.validated_data["merge_into"])
            survivor.merge_id = merge_id
            return Response(RestoredContactSerializer(survivor, context=context).data)
        contact = trash.restore(self.membership, contact_id)
        return Response(RestoredContactSerializer(contact, context=context).data)


def _contact_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("No contact with this id in the trash.")
    return int(raw)
