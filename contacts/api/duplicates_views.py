"""`GET /contacts/duplicates` and `POST /contacts/duplicates/dismiss`: thin views over
contacts.duplicates (the rules, the score, the SQL: docs/contacts.md "Duplicates")."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from contacts import duplicates
from contacts.models import Contact
from crm.api.idempotency import idempotent
from crm.api.pagination import parse_bounded_int
from crm.api.serializer_fields import StrictCharField, StrictURLField
from crm.api.throttling import SearchRateThrottle, TokenRateThrottle
from crm.api.viewsets import OrgScopedViewMixin
from crm.errors import FieldError, InvalidInput
from crm.limits import MAX_ROW_ID

REASON_HELP = (
    "`email`: addresses reaching one mailbox (dots and `+tags` ignored where the provider ignores them); "
    "`phone`: the same E.164 number; `name_company`: the same name and company, case and accents ignored."
)


class DuplicateContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = StrictCharField()
    email = StrictCharField(allow_null=True)
    phone = StrictCharField(allow_null=True, help_text="E.164.")
    company = StrictCharField()
    updated_at = serializers.DateTimeField()


class DuplicateMatchSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=duplicates.REASONS)
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="The members sharing this key.")


class DuplicateGroupSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="The members, ascending.")
    contacts = DuplicateContactSerializer(many=True, help_text="The members, in `ids` order.")
    score = serializers.IntegerField(
        min_value=0,
        max_value=100,
        help_text="How likely the members are one person: for each member 1 − Π(1 − weight) over the rules "
        "linking it (email 0.9, phone 0.7, name_company 0.6), the group's score the least of them, × 100.",
    )
    reasons = serializers.ListField(
        child=serializers.ChoiceField(choices=duplicates.REASONS), help_text="The rules linking members. " + REASON_HELP
    )
    matches = DuplicateMatchSerializer(many=True, help_text="Each shared key: its rule and the members sharing it.")


class DuplicatePageSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Groups in all (for this caller), not only on this page.")
    next = StrictURLField(allow_null=True, help_text="The next page's URL; null on the last page.")
    previous = StrictURLField(allow_null=True, help_text="Always null: pages go forward by cursor.")
    next_cursor = StrictCharField(allow_null=True, help_text="Pass as `cursor` for the next page.")
    results = DuplicateGroupSerializer(many=True)


class ContactIdField(serializers.IntegerField):
    """A JSON integer only: "12" or true is not an id."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class DismissRequestSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=ContactIdField(min_value=1, max_value=MAX_ROW_ID),
        min_length=duplicates.MIN_DISMISS,
        max_length=duplicates.MAX_GROUP,
        help_text=f"{duplicates.MIN_DISMISS}–{duplicates.MAX_GROUP} distinct ids of contacts the caller can see.",
    )


class DismissalSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    ids = serializers.ListField(child=serializers.IntegerField(), help_text="Ascending.")
    user = serializers.IntegerField(source="user_id", allow_null=True, help_text="Who dismissed them.")
    at = serializers.DateTimeField()


CONTACT = {"name": "Ada Lovelace", "company": "Analytical Engines", "updated_at": "2026-03-01T09:30:00Z"}
GROUP_EXAMPLE = {
    "ids": [101, 2045],
    "contacts": [
        {"id": 101, **CONTACT, "email": "ada.lovelace@gmail.com", "phone": "+442079460958"},
        {"id": 2045, **CONTACT, "email": "adalovelace+crm@gmail.com", "phone": "+442079460958"},
    ],
    "score": 99,
    "reasons": ["email", "phone", "name_company"],
    "matches": [
        {"reason": "email", "ids": [101, 2045]},
        {"reason": "phone", "ids": [101, 2045]},
        {"reason": "name_company", "ids": [101, 2045]},
    ],
}
LIST_DESCRIPTION = (
    "Groups of live contacts of the org that are likely the same person, best first (by `score`, then the "
    "group with the newest member), paged by `cursor`. Rules: " + REASON_HELP + " Contacts linked by "
    "several keys form one group with every reason. A key shared by more than "
    f"{duplicates.MAX_GROUP} contacts is a shared value (a switchboard, a role mailbox) and links nobody. "
    "A group whose members are all within one dismissal (`POST /contacts/duplicates/dismiss`) is not offered; "
    "a new member brings it back. An assigned-only member sees groups among their own contacts only. "
    'Each page computes the groups afresh (docs/contacts.md, "Duplicates").'
)


class DuplicatesView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = Contact
    throttle_classes = [TokenRateThrottle, SearchRateThrottle]
    serializer_class = DuplicatePageSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        summary="Likely duplicate contacts, in groups",
        description=LIST_DESCRIPTION,
        parameters=[
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": duplicates.MAX_LIMIT, "default": duplicates.DEFAULT_LIMIT},
                description=f"Groups per page, 1–{duplicates.MAX_LIMIT} (default {duplicates.DEFAULT_LIMIT}).",
            ),
            OpenApiParameter("cursor", OpenApiTypes.STR, description="`next_cursor` of the previous page."),
        ],
        responses={200: DuplicatePageSerializer},
        examples=[
            OpenApiExample(
                "a page",
                response_only=True,
                value={"count": 1, "next": None, "previous": None, "next_cursor": None, "results": [GROUP_EXAMPLE]},
            )
        ],
    )
    def get(self, request):
        limit, errors = parse_bounded_int(
            request.query_params.get("limit"), "limit", duplicates.DEFAULT_LIMIT, 1, duplicates.MAX_LIMIT
        )
        if errors:
            raise InvalidInput(errors)
        page = duplicates.find(self.membership, limit, request.query_params.get("cursor") or None)
        results = [
            {
                "ids": group.ids,
                "contacts": [page.contacts[i] for i in group.ids if i in page.contacts],
                "score": group.score,
                "reasons": group.reasons,
                "matches": group.matches,
            }
            for group in page.groups
        ]
        next_url = (
            replace_query_param(request.build_absolute_uri(), "cursor", page.next_cursor) if page.next_cursor else None
        )
        body = {"count": page.count, "next": next_url, "previous": None, "next_cursor": page.next_cursor}
        body["results"] = DuplicateGroupSerializer(results, many=True).data
        return Response(body)


class DismissDuplicatesView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = Contact
    throttle_classes = [TokenRateThrottle]
    serializer_class = DismissRequestSerializer
    pagination_class = None
    filter_backends: list = []
    request_body_required = True

    @extend_schema(
        summary="Mark contacts as not the same person",
        description=(
            "Remembers that these contacts are not one person: a duplicate group whose members are all among "
            "them is no longer offered, for anyone in the org; a contact that joins the group later brings it "
            f"back. {duplicates.MIN_DISMISS}–{duplicates.MAX_GROUP} distinct ids of contacts the caller can see "
            "(422 naming each id that is not, with `attr` `ids.<index>`). 201 with the new dismissal; 200 with "
            "the existing one when the same set was dismissed before."
        ),
        request=DismissRequestSerializer,
        responses={
            201: OpenApiResponse(DismissalSerializer, description="Dismissed."),
            200: OpenApiResponse(DismissalSerializer, description="This set was dismissed before: that dismissal."),
        },
        examples=[
            OpenApiExample("two contacts", value={"ids": [101, 2045]}, request_only=True),
            OpenApiExample(
                "dismissal",
                value={"id": 7, "ids": [101, 2045], "user": 3, "at": "2026-03-01T09:31:00Z"},
                response_only=True,
            ),
        ],
    )
    @idempotent
    def post(self, request):
        if not isinstance(request.data, dict):
            raise InvalidInput([FieldError(None, "wrong_type", "Expected a JSON object with `ids`.")])
        unknown = sorted(set(request.data) - {"ids"})
        if unknown:
            raise InvalidInput([FieldError(key, "unknown_field", f"Unknown field {key!r}.") for key in unknown])
        body = DismissRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        ids = body.validated_data["ids"]
        repeated = [FieldError(f"ids.{i}", "duplicate", "Each id once.") for i, v in enumerate(ids) if v in ids[:i]]
        if repeated:
            raise InvalidInput(repeated)
        dismissal, created = duplicates.dismiss(self.membership, ids)
        answer = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(DismissalSerializer(dismissal).data, status=answer)
