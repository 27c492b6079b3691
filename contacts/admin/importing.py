"""The contact admin's CSV import page: the API's import (contacts.importing), synchronous or as a
job of the task queue, into one of the staff user's organizations, as their membership there."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from contacts.admin.base import acting_membership, as_staff
from contacts.admin.forms import ImportForm
from contacts.importing import ContactImporter, parse_options, read_csv
from contacts.importing.jobs import UPLOAD_PART_BYTES, Starter, start_csv
from contacts.normalize import ContactNormalizer
from crm.errors import InvalidInput, TooLarge
from orgs.admin import staff_scope


class ImportPageMixin:
    def import_view(self, request):
        """Upload a CSV for one of the staff user's orgs and show the report."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        report = None
        orgs = staff_scope(request).orgs(writes=True)
        initial = {"org": request.GET.get("org")} if request.GET.get("org", "").isdigit() else None
        form = ImportForm(orgs, request.POST or None, request.FILES or None, initial=initial)
        if request.method == "POST" and form.is_valid():
            if not form.cleaned_data["run_async"]:
                report = self._run_import(request, form)
            elif job := self._start_import_job(request, form):
                return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import contacts from CSV",
            "form": form,
            "report": report,
            "max_rows": settings.IMPORT_MAX_ROWS,
            "max_bytes": settings.IMPORT_MAX_BODY_BYTES,
            "async_max_rows": settings.ASYNC_IMPORT_MAX_ROWS,
            "async_max_bytes": settings.ASYNC_IMPORT_MAX_BODY_BYTES,
            "changelist_url": reverse("admin:contacts_contact_changelist"),
        }
        return TemplateResponse(request, "admin/contacts/contact/import.html", context)

    @staticmethod
    def _import_options(data: dict):
        names = ("dedupe_on", "on_duplicate", "dry_run", "tags")
        return parse_options({**{name: data[name] for name in names}, "async": data["run_async"]})

    @staticmethod
    def _import_errors(form, exc: InvalidInput | TooLarge) -> None:
        if isinstance(exc, TooLarge):
            form.add_error("file", str(exc.detail))
            return
        for error in exc.field_errors:
            form.add_error("tags" if (error.attr or "").startswith("tags") else "file", error.detail)

    def _start_import_job(self, request, form):
        """An async import job, started by this staff user as their membership (its header checked now)."""
        data = form.cleaned_data
        org, upload = data["org"], data["file"]
        staff = as_staff(acting_membership(request, org.id))
        try:
            options = self._import_options(data)
            # A refused file must leave no job or parts behind: this answer is a 200, not rolled back.
            with transaction.atomic():
                parts = upload.chunks(UPLOAD_PART_BYTES)
                job = start_csv(Starter(org.id, request.user.id, staff=staff), options, parts, "file")
        except (InvalidInput, TooLarge) as exc:
            self._import_errors(form, exc)
            return None
        messages.success(
            request,
            f"Import of {upload.name} ({upload.size:,} bytes) into {org} queued as job #{job.pk}. "
            "Reload this page to follow its progress.",
        )
        return job

    def _run_import(self, request, form) -> dict | None:
        data = form.cleaned_data
        org = data["org"]
        try:
            options = self._import_options(data)
            membership = acting_membership(request, org.id)
            normalizer = ContactNormalizer.for_org(org, None if as_staff(membership) else membership)
            rows, ignored = read_csv(data["file"].read(), normalizer.custom_fields, attr="file")
            report = ContactImporter(normalizer, options).run(rows)
        except (InvalidInput, TooLarge) as exc:
            self._import_errors(form, exc)
            return None
        report.ignored_columns = ignored
        verb = "Checked" if options.dry_run else "Imported"
        messages.success(
            request,
            f"{verb} {report.total} rows into {org}: {report.created} created, "
            f"{report.updated} updated, {report.skipped} skipped, {report.failed} failed, "
            f"{report.conflicts} conflicts.",
        )
        return report.as_dict()
