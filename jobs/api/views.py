"""`GET /jobs`, `GET /jobs/{id}`, cancel, undo and the error file (DESIGN §4 Jobs).

A member sees (and cancels, undoes) their own jobs; an owner or admin every job of the org
(`JobQuerySet.for_member`): another's job is a 404, as if it did not exist.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from crm.api.viewsets import OrgScopedViewSet
from jobs import services
from jobs.api.serializers import JobSerializer
from jobs.files import error_file_response
from jobs.models import Job

JOB_EXAMPLE = {
    "id": 412,
    "kind": "import",
    "status": "running",
    "progress": {"done": 240000, "total": 1000000},
    "result": {"total": 240000, "created": 231877, "updated": 8011, "skipped": 0, "failed": 112, "conflicts": 0,
               "ignored_columns": ["favourite_colour"], "dry_run": False},
    "errors": {"count": 112, "url": "/api/v1/jobs/412/errors"},
    "created_by": 3,
    "undo_of": None,
    "cancel_requested": False,
    "created_at": "2026-12-04T09:30:00Z",
    "started_at": "2026-12-04T09:30:01Z",
    "finished_at": None,
    "undo_until": None,
}  # fmt: skip
ERROR_FILE_EXAMPLE = (
    "name,email,phone,tags,error_row,error_outcome,error_message\r\n"
    "Ada Lovelace,ada@,,vip,3,failed,email: Enter a valid email address.\r\n"
)


class JobFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Job.Kind.choices)
    status = django_filters.ChoiceFilter(choices=Job.Status.choices)

    class Meta:
        model = Job
        fields = ["kind", "status"]


@extend_schema_view(
    list=extend_schema(
        summary="List jobs",
        description="Newest first. A member sees their own jobs; an owner or admin every job of the organization.",
    ),
    retrieve=extend_schema(
        summary="Get a job",
        description="Its status and progress; poll it while `status` is `queued` or `running`.",
        examples=[OpenApiExample("a running import", value=JOB_EXAMPLE, response_only=True)],
    ),
)
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, OrgScopedViewSet):
    queryset_model = Job
    serializer_class = JobSerializer
    filterset_class = JobFilter

    @property
    def error_statuses(self) -> tuple[str, ...]:
        """409 for an action the job's state refuses (documented per operation)."""
        return ("409",) if getattr(self, "action", None) in ("cancel", "undo") else ()

    def refine_queryset(self, qs):
        return qs.select_related(None)

    def check_lookup(self, value: str) -> None:
        if not value.isascii() or not value.isdigit() or len(value) > 18:
            raise NotFound()

    @extend_schema(
        summary="Cancel a job",
        description="A queued job is cancelled at once; a running one at the end of its current step (what "
        "the finished steps wrote stays, and can be undone). 409 if it has already finished.",
        request=None,
        responses={200: JobSerializer},
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def cancel(self, request, pk=None):
        job = services.cancel(self._locked_job())
        return Response(JobSerializer(job).data)

    @extend_schema(
        summary="Undo a job",
        description="Starts a job of kind `undo` (202) that reverses this one, within `undo_until`. An import: "
        "contacts it created are removed, fields it updated are put back; a contact or field changed since "
        "by someone else is left alone and reported in the undo's `result.kept_fields`. When the undo "
        "succeeds this job's status becomes `undone`. 409 if the job is not finished, already undone, being "
        "undone, past `undo_until`, or of a kind that cannot be undone.",
        request=None,
        responses={202: JobSerializer},
        examples=[
            OpenApiExample(
                "the undo job",
                response_only=True,
                status_codes=["202"],
                value={**JOB_EXAMPLE, "id": 413, "kind": "undo", "status": "queued", "undo_of": 412,
                       "progress": {"done": 0, "total": None}, "result": None, "errors": {"count": 0, "url": None},
                       "started_at": None},
            )
        ],
    )  # fmt: skip
    @action(detail=True, methods=["post"], filterset_class=None)
    def undo(self, request, pk=None):
        undo_job = services.undo(self._locked_job(), self.membership.user_id)
        return Response(JobSerializer(undo_job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Download a job's error file",
        description="CSV (UTF-8): the rows that failed or conflicted, with the columns they were given in (fix "
        "them and import the file again), then `error_row` (the row's number in the upload), `error_outcome` "
        "(`failed` or `conflict`) and `error_message`. Streamed; complete once the job has finished.",
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, examples=[OpenApiExample("error file", value=ERROR_FILE_EXAMPLE)]
            )
        },
    )
    @action(detail=True, methods=["get"], filterset_class=None, pagination_class=None, url_path="errors")
    def errors(self, request, pk=None):
        response = error_file_response(self.get_object())
        if response is None:
            raise NotFound("This kind of job has no error file.")
        return response

    def _locked_job(self) -> Job:
        job = self.get_object()
        return Job.objects.select_for_update().get(pk=job.pk)
