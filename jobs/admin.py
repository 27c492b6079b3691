"""Django admin for jobs: staff follow, cancel and undo jobs and download error files. Superusers see
every org's jobs; other staff those of their organizations a member would see through the API (their
own; every job where they are owner or admin: JobQuerySet.for_member), through orgs.admin's scope.

A job's fields are written only by its worker and by jobs.services, so the change page is
read-only; its Cancel and Undo buttons post to views of their own, which lock the job's row
first (as the API does) and report a conflict as a message.
"""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from crm.errors import Conflict
from jobs import services
from jobs.files import error_file_response
from jobs.kinds import KINDS
from jobs.models import Job
from orgs.admin import OrgFilter, OrgScopedAdminMixin, ReadOnlyAdminMixin, staff_scope


def progress_text(job: Job) -> str:
    """'240,000 / 1,000,000 (24%)'; the total is unknown until the job has counted its units."""
    if job.progress_total is None:
        return f"{job.progress_done:,} / ?"
    if not job.progress_total:
        return f"{job.progress_done:,} / 0"
    percent = min(100, job.progress_done * 100 // job.progress_total)
    return f"{job.progress_done:,} / {job.progress_total:,} ({percent}%)"


def pretty_json(value) -> str:
    if value is None:
        return "—"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


@admin.register(Job)
class JobAdmin(ReadOnlyAdminMixin, OrgScopedAdminMixin, admin.ModelAdmin):
    list_display = ["id", "org", "kind", "status", "progress", "created_by", "created_at", "finished_at"]
    list_filter = ["kind", "status", OrgFilter]
    list_select_related = ["org", "created_by"]
    ordering = ["-id"]  # newest first by the pk index (created_at is indexed only per org)
    show_full_result_count = False
    actions = ["cancel_selected", "undo_selected"]
    fields = [
        "org", "kind", "status", "progress", "job_actions", "error_file", "result_json", "params_json",
        "created_by", "undo_of", "cancel_requested", "created_at", "started_at", "finished_at", "undo_deadline",
    ]  # fmt: skip
    readonly_fields = fields

    # --- read-only (ReadOnlyAdminMixin): the journal and error file hang on the job; cancel and undo -

    def has_manage_permission(self, request, obj=None) -> bool:
        """Cancel and undo: for staff who hold the model's change permission, or (as in the API)
        whoever sees the job: a member of its org (the queryset keeps the jobs they see)."""
        granted = request.user.has_perm(f"{self.opts.app_label}.change_{self.opts.model_name}")
        return granted or bool(staff_scope(request).memberships)

    # --- columns and fields ----------------------------------------------------------------------

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        return progress_text(job)

    @admin.display(description="result")
    def result_json(self, job: Job) -> str:
        return pretty_json(job.result)

    @admin.display(description="parameters")
    def params_json(self, job: Job) -> str:
        return pretty_json(job.params)

    @admin.display(description="error file")
    def error_file(self, job: Job) -> str:
        kind = KINDS.get(job.kind)
        if kind is None or kind.error_rows is None:
            return "—"
        url = reverse("admin:jobs_job_errors", args=[job.pk])
        return format_html('<a href="{}">Download CSV</a> ({} rows)', url, f"{job.error_count:,}")

    @admin.display(description="actions")
    def job_actions(self, job: Job) -> str:
        """Buttons that post the (otherwise empty) change form, with its CSRF token, to the views below."""
        buttons = []
        if not job.finished:
            buttons.append(("cancel", "Cancel"))
        kind = KINDS.get(job.kind)
        if job.finished and job.status != Job.Status.UNDONE and kind is not None and kind.undo is not None:
            buttons.append(("undo", "Undo"))
        if not buttons:
            return "—"
        return format_html_join(
            " ",
            '<button type="submit" class="button" name="_{}" formaction="{}">{}</button>',
            ((action, reverse(f"admin:jobs_job_{action}", args=[job.pk]), label) for action, label in buttons),
        )

    # --- cancel, undo, error file ----------------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:job_id>/errors/", view(self.errors_view), name="jobs_job_errors"),
            path("<int:job_id>/cancel/", view(self.cancel_view), name="jobs_job_cancel"),
            path("<int:job_id>/undo/", view(self.undo_view), name="jobs_job_undo"),
            *super().get_urls(),
        ]

    @admin.action(description="Cancel selected jobs", permissions=["manage"])
    def cancel_selected(self, request, queryset):
        self._apply(request, queryset.values_list("pk", flat=True), "cancel")

    @admin.action(description="Undo selected jobs", permissions=["manage"])
    def undo_selected(self, request, queryset):
        self._apply(request, queryset.values_list("pk", flat=True), "undo")

    def cancel_view(self, request, job_id: int):
        return self._action_view(request, job_id, "cancel")

    def undo_view(self, request, job_id: int):
        return self._action_view(request, job_id, "undo")

    def _action_view(self, request, job_id: int, action: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_manage_permission(request):
            raise PermissionDenied
        get_object_or_404(self.get_queryset(request), pk=job_id)
        self._apply(request, [job_id], action)
        return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[job_id]))

    def _apply(self, request, job_ids, action: str) -> None:
        """Cancel or undo each job, its row locked first (a worker's step or another click may be on
        it); locked in id order, so two staff acting on overlapping selections cannot deadlock."""
        for job in self.get_queryset(request).select_for_update().filter(pk__in=list(job_ids)).order_by("pk"):
            try:
                with transaction.atomic():  # a conflict on one job leaves the others' outcome
                    message = self._act(request, job, action)
            except Conflict as exc:
                messages.error(request, f"Job #{job.pk}: {exc.detail}")
            else:
                messages.success(request, message)

    @staticmethod
    def _act(request, job: Job, action: str) -> str:
        if action == "undo":
            undo_job = services.undo(job, request.user.id)
            return f"Job #{job.pk}: its undo is queued as job #{undo_job.pk}."
        services.cancel(job)
        if job.status == Job.Status.CANCELLED:
            return f"Job #{job.pk} is cancelled."
        return f"Job #{job.pk} stops at the end of its current step (what its finished steps wrote stays)."

    def errors_view(self, request, job_id: int):
        job = get_object_or_404(self.get_queryset(request), pk=job_id)
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        response = error_file_response(job)
        if response is None:
            raise Http404("This kind of job has no error file.")
        return response
