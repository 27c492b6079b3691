"""`POST /contacts/bulk`: an action on every contact of a smart list, as a job (contacts.bulk).
Thin: the body's shapes here, the action's meaning and the work in contacts.bulk."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from contacts import bulk
from contacts.api.smart_list import SmartListRequestSerializer
from contacts.models import Contact
from contacts.normalize import ContactNormalizer
from contacts.smart_list import SmartList
from crm.api.serializer_fields import StrictCharField
from crm.api.throttling import TokenRateThrottle
from crm.api.viewsets import OrgScopedViewMixin
from crm.errors import FieldError, InvalidInput
from jobs.api.serializers import JobSerializer

MAX_SELECTED = 2**31 - 1


class BulkActionSerializer(serializers.Serializer):
    """Exactly one key."""

    add_tags = serializers.ListField(
        child=StrictCharField(), required=False, min_length=1, help_text="Tag names to add (new ones join the catalog)."
    )
    remove_tags = serializers.ListField(child=StrictCharField(), required=False, min_length=1, help_text="Tag names.")
    assign_to = serializers.IntegerField(
        required=False, allow_null=True, help_text="A member's user id, or null to unassign."
    )
    set = serializers.DictField(
        required=False,
        help_text="Built-in fields (not `email`, `tags`) and `custom.<key>`, each with one value for every "
        "contact, validated as in a PATCH.",
    )
    clear = serializers.ListField(
        child=StrictCharField(), required=False, min_length=1, help_text="Built-in fields and `custom.<key>` to empty."
    )
    trash = serializers.BooleanField(
        required=False,
        help_text="`true`: move the contacts to the trash (`GET /contacts/trash`); undo restores those still there.",
    )


class BulkRequestSerializer(SmartListRequestSerializer):
    expected_count = serializers.IntegerField(
        min_value=0,
        max_value=MAX_SELECTED,
        help_text="How many contacts the caller saw in the selection; when the job starts, another count fails "
        "it with `count_changed` and nothing is touched.",
    )
    action = BulkActionSerializer()


class BulkAcceptedSerializer(serializers.Serializer):
    job = JobSerializer()


BULK_DESCRIPTION = (
    "Applies one action to every contact of a smart list the caller may see (an assigned-only member: theirs), "
    "as a job (202; follow it at `GET /jobs/{id}`, cancel it, undo it within TRASH_DAYS). Give at most one of "
    "`query`, `view`, `ids` (none: every contact); `q` narrows any of them. The selection is the smart list as "
    "the job starts: if it then matches another number of contacts than `expected_count`, the job fails with "
    "`count_changed` and changes nothing. Values are validated as a PATCH would (an assigned-only member can "
    "only assign to themselves). The job's `result`: `matched`, `changed`, `unchanged`, `skipped` (deleted or "
    "out of scope since), `failed` and `failures` (`contact_id`, `reason`; the first 1,000). `trash` moves the "
    "contacts to the trash, whole; its undo restores those still there (one whose email a live contact has taken "
    "since stays, reported in the undo job's `kept_fields`)."
)


class ContactBulkView(OrgScopedViewMixin, GenericAPIView):
    queryset_model = Contact
    throttle_classes = [TokenRateThrottle]
    serializer_class = BulkRequestSerializer
    pagination_class = None
    filter_backends: list = []

    @extend_schema(
        summary="Act on a smart list (tags, assignment, field values)",
        description=BULK_DESCRIPTION,
        request=BulkRequestSerializer,
        responses={202: OpenApiResponse(BulkAcceptedSerializer, description="The job, queued.")},
        examples=[
            OpenApiExample(
                "tag a view's contacts",
                request_only=True,
                value={"view": 3, "expected_count": 1840, "action": {"add_tags": ["renewal-2027"]}},
            ),
            OpenApiExample(
                "set fields on a query's contacts",
                request_only=True,
                value={
                    "query": {"groups": [{"conditions": [{"field": "company", "op": "eq", "value": "Acme"}]}]},
                    "expected_count": 12,
                    "action": {"set": {"source": "trade show", "custom.tier": "Gold"}},
                },
            ),
        ],
    )
    def post(self, request):
        body = BulkRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        errors: list[FieldError] = []
        membership = self.membership
        smart_list = SmartList.from_request(body.validated_data, membership, errors)
        if errors:
            raise InvalidInput(errors)
        smart_list.contacts(membership.org, membership)  # a bad query is a 422 now, not a failed job
        given = {"action": request.data["action"], "expected_count": body.validated_data["expected_count"]}
        job = bulk.start(ContactNormalizer.for_member(membership), membership.user_id, given, smart_list)
        location = reverse("job-detail", args=[job.pk])
        accepted = {"job": JobSerializer(job).data}
        return Response(accepted, status=status.HTTP_202_ACCEPTED, headers={"Location": location})
