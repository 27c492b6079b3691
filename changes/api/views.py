"""`GET /changes`: the org's change feed, in commit order, by cursor (changes.feed)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from changes import feed
from changes.models import Commit
from crm.api.pagination import parse_bounded_int
from crm.api.serializer_fields import StrictCharField
from crm.api.viewsets import OrgScopedViewMixin
from crm.errors import InvalidInput
from crm.limits import DEFAULT_LIMIT, MAX_LIMIT

OBJECTS = ["contact", "opportunity", "tag", "custom_field", "view"]
EVENTS = ["created", "updated", "deleted", "trashed", "restored", "merged", "purged"]


class FeedActorSerializer(serializers.Serializer):
    user = serializers.IntegerField(allow_null=True, help_text="The user who made the change.")
    token = StrictCharField(
        allow_null=True, help_text="The public prefix of the API token used (never the token); null outside the API."
    )


class ChangeSerializer(serializers.Serializer):
    """The schema of one entry of the feed, as `changes.feed.entry_payload` writes it (the feed and
    webhooks send the same; changes/tests check the payload against this schema)."""

    id = StrictCharField(
        help_text="The entry's place in the feed, opaque: unique in the org, and usable as `cursor` to resume "
        "right after this entry."
    )
    at = serializers.DateTimeField(help_text="When the transaction that made it committed.")
    object = serializers.ChoiceField(OBJECTS, help_text="What changed.")
    object_id = serializers.IntegerField(help_text="The id of what changed.")
    event = serializers.ChoiceField(
        EVENTS,
        help_text="A contact: created, updated, trashed, restored, merged (trashed by a merge into another) or purged "
        "(deleted from the trash for good). Other objects: created, updated or deleted.",
    )
    changes = serializers.DictField(
        child=serializers.ListField(child=serializers.JSONField(allow_null=True), min_length=2, max_length=2),
        help_text="`{field: [before, after]}`. Contacts as in their history (`tags`, `custom.<key>`); other "
        "objects by column (`contact_id`, `value`, `options`, …); a created object lists its values as "
        "`[null, value]`, a deleted one (not a contact) as `[value, null]`.",
    )
    actor = FeedActorSerializer()
    source = serializers.CharField(
        help_text="The write path: api, import, bulk, merge, restore, admin; system when none."
    )
    job = serializers.IntegerField(allow_null=True, help_text="The import or bulk job, if any.")


EXAMPLE = {
    "next_cursor": "ZjE6NzozOToyOjA",
    "has_more": False,
    "results": [
        {
            "id": "ZjE6NzozODowOjkwNTE", "at": "2026-12-03T14:02:11.120934Z", "object": "contact", "object_id": 42,
            "event": "updated", "changes": {"email": ["ada@old.example", "ada@example.com"],
                                            "tags": [["lead"], ["customer", "lead"]]},
            "actor": {"user": 7, "token": "a1b2c3d4e5f6a7b"}, "source": "api", "job": None,
        },
        {
            "id": "ZjE6NzozOToxOjEyMg", "at": "2026-12-03T14:02:12.500000Z", "object": "opportunity",
            "object_id": 5, "event": "updated", "changes": {"stage": ["demo", "proposal"]},
            "actor": {"user": 7, "token": "a1b2c3d4e5f6a7b"}, "source": "api", "job": None,
        },
    ],
}  # fmt: skip


class ChangeFeedView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = Commit  # the feed is read by changes.feed, inside the org like every query
    serializer_class = ChangeSerializer
    error_statuses = ("410",)

    @extend_schema(
        summary="The change feed",
        description="Every change to the org's contacts, opportunities, tags, custom fields and saved views, in "
        "the order the changes committed, from every write path. Poll with the `next_cursor` of the previous "
        "answer (none at first: from the oldest change kept): a consumer that does never misses a change and "
        "never sees one twice, however writers interleave. `has_more` says a next page is ready now; otherwise "
        "poll again later. Entries are kept `CHANGES_DAYS` (30); a cursor older than that is a 410. An "
        "assigned-only member sees the changes of the contacts assigned to them (and their opportunities) and "
        "those of tags, custom fields and views.",
        parameters=[
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                description=f"Entries per page, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT}).",
            ),
            OpenApiParameter(
                "cursor",
                {"type": "string", "minLength": 1, "maxLength": 200},
                description="`next_cursor` of the previous page, or an entry's `id` to resume after it.",
            ),
        ],
        responses={
            200: OpenApiResponse(
                inline_serializer(
                    "ChangeFeedPage",
                    {
                        "next_cursor": StrictCharField(help_text="Pass as `cursor` on the next poll; never null."),
                        "has_more": serializers.BooleanField(help_text="More entries are ready now."),
                        "results": ChangeSerializer(many=True),
                    },
                ),
                examples=[OpenApiExample("changes", value=EXAMPLE)],
            ),
        },
    )
    def get(self, request):
        org_id = self.membership.org_id
        limit, errors = parse_bounded_int(request.query_params.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        if errors:
            raise InvalidInput(errors)
        cursor = request.query_params.get("cursor")
        after = feed.decode_cursor(org_id, cursor) if cursor is not None else None
        assignee = self.membership.user_id if self.membership.sees_only_assigned else None
        page = feed.read(org_id, after, limit, assignee_id=assignee)
        return Response(
            {
                "next_cursor": feed.encode_cursor(org_id, page.next_position),
                "has_more": page.has_more,
                "results": [feed.entry_payload(org_id, entry) for entry in page.entries],
            }
        )
