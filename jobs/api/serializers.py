from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobs.models import Job


class JobProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Units applied and committed (an import: rows read).")
    total = serializers.IntegerField(allow_null=True, help_text="All units; null until the job has counted them.")


class JobErrorsSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Rows in the error file.")
    url = serializers.CharField(allow_null=True, help_text="The error file (CSV); null for kinds without one.")


class JobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    errors = serializers.SerializerMethodField()
    result = serializers.JSONField(
        allow_null=True,
        help_text="The kind's outcome (so far while running; `error` holds the reason of a failed job). An import: "
        "its report's counts (`total`, `created`, `updated`, `skipped`, `failed`, `conflicts`, `ignored_columns`, "
        "`dry_run`). A bulk action: `matched`, `changed`, `unchanged`, `skipped` (deleted or out of scope since), "
        "`failed`, `failures` (`contact_id`, `reason`). An undo: `removed`, `restored`, `kept`, `unchanged` and "
        "`kept_fields` (`contact_id`, `field`, `reason`; what changed since and was left alone).",
    )
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True, help_text="The user who started it.")
    undo_of = serializers.IntegerField(source="undo_of_id", allow_null=True, help_text="An undo: the job it reverses.")
    undo_until = serializers.DateTimeField(
        source="undo_deadline", allow_null=True, help_text="Until when it can be undone (TRASH_DAYS after its end)."
    )

    class Meta:
        model = Job
        fields = [
            "id", "kind", "status", "progress", "result", "errors", "created_by", "undo_of", "cancel_requested",
            "created_at", "started_at", "finished_at", "undo_until",
        ]  # fmt: skip
        read_only_fields = fields

    @extend_schema_field(JobProgressSerializer)
    def get_progress(self, job: Job) -> dict:
        return {"done": job.progress_done, "total": job.progress_total}

    @extend_schema_field(JobErrorsSerializer)
    def get_errors(self, job: Job) -> dict:
        url = reverse("job-errors", args=[job.pk]) if job.kind == Job.Kind.IMPORT else None
        return {"count": job.error_count, "url": url}
