"""`POST /contacts/merge` and `POST /contacts/merges/{id}/undo`: any role, on contacts the caller
can see. The work is contacts.merge's."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from contacts import merge
from contacts.api.serializers import ContactSerializer
from contacts.models import Contact
from contacts.normalize import ContactNormalizer
from crm.api.serializer_fields import ClosedSerializer
from crm.api.viewsets import OrgScopedViewMixin
from crm.errors import NotFound

MAX_ID = 2**63 - 1


class MergeRequestSerializer(ClosedSerializer):
    into = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="The contact that stays (the survivor).")
    prefer = serializers.DictField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        default=dict,
        help_text="Per field (a built-in field name, `name` for the whole name, or `custom.<key>`): the id of the "
        "contact (`into` or one of `from`) whose value wins. Other fields: the survivor's value if not empty, else "
        "the most recently updated other's. Tags are always the union.",
    )

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.ListField(  # `from` is a Python keyword: declared here
            child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
            min_length=1,
            max_length=merge.MAX_FROM,
            help_text=f"The contacts merged into `into` (1 to {merge.MAX_FROM}); they go to the trash with "
            "`merged_into`, and `GET /contacts/{id}` of them answers the survivor.",
        )
        return fields


class MergedContactSerializer(ContactSerializer):
    merge_id = serializers.IntegerField(read_only=True, help_text="Undo with `POST /contacts/merges/{merge_id}/undo`.")

    def to_representation(self, instance):
        return {**super().to_representation(instance), "merge_id": instance.merge_id}


class ContactMergeView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = Contact
    serializer_class = MergeRequestSerializer
    error_statuses = ("404", "409")

    @extend_schema(
        summary="Merge contacts into one",
        description="One transaction: per field the `prefer`red contact's value, else the survivor's non-empty "
        "value, else the most recently updated other's; tags are the union, custom values chosen per key the same "
        "way; every opportunity of `from` moves to the survivor; `from` goes to the trash marked `merged_into`. "
        "Recorded in each contact's history. 404 when a contact is not visible; 409 `merged_meanwhile` when a "
        "concurrent merge or delete took one of them; 422 for an invalid `prefer` or a merged value the survivor "
        "cannot take (e.g. more than 100 tags).",
        request=MergeRequestSerializer,
        responses=MergedContactSerializer,
        examples=[
            OpenApiExample(
                "merge two into one", request_only=True, value={"into": 12, "from": [57, 91], "prefer": {"email": 57}}
            )
        ],
    )
    def post(self, request):
        body = MergeRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        normalizer, user_id = ContactNormalizer.for_member(self.membership), self.membership.user_id
        survivor, merge_id = merge.merge(normalizer, user_id, data["into"], data["from"], data["prefer"])
        survivor.merge_id = merge_id
        return Response(MergedContactSerializer(survivor, context=self.get_serializer_context()).data)


class MergeUndoView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = Contact
    serializer_class = ContactSerializer
    error_statuses = ("409",)

    @extend_schema(
        summary="Undo a merge",
        description="Within `TRASH_DAYS`: the survivor's fields the merge set are put back, the merged contacts "
        "restored from the trash under their ids, their opportunities moved back. 409 `changed_since` (with "
        "`fields`) when the survivor changed since in a field the merge set, `already_undone`, `undo_expired`, or "
        "`not_restorable` (a merged contact was purged or its email taken); nothing is changed then.",
        parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The merge id.")],
        request=None,
        responses=ContactSerializer,
    )
    def post(self, request, pk):
        if not pk.isdigit() or len(pk) > 18:
            raise NotFound("No merge with this id.")
        survivor = merge.undo(self.membership, int(pk))
        return Response(ContactSerializer(survivor, context=self.get_serializer_context()).data)
