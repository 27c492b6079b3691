"""`GET /contacts/{id}/history`: a contact's change history (history.models), newest first, by cursor.

Visible when the contact is: alive and within the caller's scope (`Contact.objects.for_member`), or
in the trash and within it (`TrashedContact.objects.for_member`); 404 otherwise, as for its detail.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from contacts.models import Contact, TrashedContact
from contacts.paging import decode_cursor, encode_cursor
from crm.api.pagination import parse_bounded_int
from crm.api.serializer_fields import StrictCharField, StrictModelSerializer, StrictURLField
from crm.api.viewsets import OrgScopedViewMixin
from crm.errors import InvalidInput, NotFound
from crm.limits import DEFAULT_LIMIT, MAX_LIMIT
from history.models import ContactChange

ORDER = ["-id"]  # newest first: ids grow with time


class ActorSerializer(serializers.Serializer):
    user = serializers.IntegerField(source="user_id", allow_null=True, help_text="The user who made the change.")
    token = StrictCharField(
        allow_null=True, help_text="The public prefix of the API token used (never the token); null outside the API."
    )


class ContactChangeSerializer(StrictModelSerializer):
    actor = ActorSerializer(source="*")
    job = serializers.IntegerField(source="job_id", allow_null=True, help_text="The import or bulk job, if any.")
    changes = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(allow_null=True), min_length=2, max_length=2),
        help_text="`{field: [before, after]}`: built-in fields by name, `tags` as sorted names, custom values as "
        "`custom.<key>` in canonical form (a multi_select: its options in order). A `created` or `restored` "
        "entry lists the non-empty values as `[null, value]`; a `trashed` or `merged` entry has none.",
    )

    class Meta:
        model = ContactChange
        fields = ["id", "at", "event", "actor", "source", "job", "changes"]
        extra_kwargs = {
            "at": {"help_text": "When the transaction that made the change started."},
            "event": {"help_text": "created, updated, trashed, restored, merged (trashed by a merge) or deleted."},
            "source": {"help_text": "The write path: api, import, bulk, merge, restore, admin; system when none."},
        }


EXAMPLE = {
    "next": "https://crm.example/api/v1/contacts/42/history?cursor=eyJzIjoi...&limit=50",
    "next_cursor": "eyJzIjoi...",
    "results": [
        {
            "id": 9051, "at": "2026-12-03T14:02:11.120934Z", "event": "updated",
            "actor": {"user": 7, "token": "a1b2c3d4e5f6a7b"}, "source": "api", "job": None,
            "changes": {"email": ["ada@old.example", "ada@example.com"], "tags": [["lead"], ["customer", "lead"]],
                        "custom.plan": [None, "pro"]},
        },
        {
            "id": 8800, "at": "2026-11-20T09:00:00Z", "event": "created", "actor": {"user": 7, "token": None},
            "source": "import", "job": 311,
            "changes": {"name": [None, "Ada Lovelace"], "email": [None, "ada@old.example"]},
        },
    ],
}  # fmt: skip


class ContactHistoryView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = ContactChange
    serializer_class = ContactChangeSerializer

    def check_lookup(self, value: str) -> None:
        if not value.isascii() or not value.isdigit() or len(value) > 18:
            raise NotFound("No contact with this id.")

    def refine_queryset(self, qs):
        return qs.filter(contact_id=self.kwargs["pk"]).order_by(*ORDER)

    @extend_schema(
        summary="A contact's change history",
        description="Every change to the contact, newest first, from every write path (API, import, bulk action, "
        "merge, restore, admin), captured by the database: one entry per transaction, with who made it (user, "
        "token prefix), the source, the job and each field's `[before, after]`. A write that changes nothing leaves "
        "no entry. Kept `HISTORY_DAYS` (730). Also for a contact in the trash; 404 for a contact the caller cannot "
        "see. Paged by `cursor` (`next_cursor` of the previous page).",
        parameters=[
            OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Contact id."),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                description=f"Page size, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT}).",
            ),
            OpenApiParameter(
                "cursor", {"type": "string", "minLength": 1}, description="`next_cursor` of the previous page."
            ),
        ],
        responses=inline_serializer(
            "ContactHistoryPage",
            {
                "next": StrictURLField(allow_null=True, help_text="The next page's URL; null on the last page."),
                "next_cursor": StrictCharField(allow_null=True, help_text="Pass as `cursor` for the next page."),
                "results": ContactChangeSerializer(many=True),
            },
        ),
        examples=[OpenApiExample("history", value=EXAMPLE, response_only=True)],
    )
    def get(self, request, pk):
        self.check_lookup(pk)
        limit, errors = parse_bounded_int(request.query_params.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        if errors:
            raise InvalidInput(errors)
        cursor = request.query_params.get("cursor")
        after = decode_cursor(cursor, ORDER) if cursor is not None else None
        if not contact_is_visible(self.membership, int(pk)):
            raise NotFound("No contact with this id.")
        entries = self.get_queryset()
        if after is not None:
            entries = entries.filter(id__lt=after[0])
        page = list(entries[:limit])
        next_cursor = encode_cursor(page[-1], ORDER) if len(page) == limit else None
        next_url = None
        if next_cursor is not None:
            next_url = replace_query_param(request.build_absolute_uri(), "cursor", next_cursor)
        return Response(
            {"next": next_url, "next_cursor": next_cursor, "results": self.get_serializer(page, many=True).data}
        )


def contact_is_visible(membership, contact_id: int) -> bool:
    """The caller may see the contact, alive or in the trash."""
    alive = Contact.objects.for_member(membership).filter(pk=contact_id)
    trashed = TrashedContact.objects.for_member(membership).filter(contact_id=contact_id)
    return alive.exists() or trashed.exists()
