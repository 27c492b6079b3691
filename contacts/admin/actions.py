"""Actions of the contact list: export, tag, untag, assign, change a field, move to the trash,
merge. Each acts on the ticked contacts, or with "Select all N" on the whole filtered list, and
runs the API's own code: contacts.export streams the CSV, contacts.bulk runs the rest as a job
(whose page shows its progress, cancel and undo).

The whole list goes to a job as the API would send it: the list's conditions as a smart list
(contacts.admin.listing), with the count the staff user confirmed as `expected_count`, so a list
that changed in between fails the job (`count_changed`) instead of touching other contacts.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from contacts.admin.base import acting_membership, as_staff
from contacts.admin.forms import BulkChangeForm
from contacts.admin.listing import contact_list
from contacts.bulk import start as start_bulk
from contacts.export import LIST_ORDER, export_lines, known_columns
from contacts.normalize import ContactNormalizer
from contacts.search.fields import FieldRegistry
from contacts.smart_list import MAX_IDS, SmartList
from crm.errors import InvalidInput
from orgs.models import Membership, Organization

TITLES = {
    "add_tags": "Tag",
    "remove_tags": "Untag",
    "assign_to": "Assign",
    "trash": "Move to the trash",
    None: "Change",
}


@dataclass
class Target:
    """What an action acts on: ticked contacts (`ids`) or the whole filtered list, of one org."""

    org: Organization
    membership: Membership
    smart_list: SmartList
    count: int
    whole_list: bool

    @property
    def described(self) -> str:
        noun = "contact" if self.count == 1 else "contacts"
        if self.whole_list:
            return f"all {self.count:,} {noun} of the filtered list"
        return f"{self.count:,} selected {noun}"

    def rows(self):
        """The contacts themselves, as an export of the API selects them."""
        membership = None if as_staff(self.membership) else self.membership
        return self.smart_list.contacts(self.org, membership)


class ContactActionsMixin:
    actions = [
        "export_selected", "tag_selected", "untag_selected", "assign_selected", "bulk_change",
        "delete_selected", "merge_selected",
    ]  # fmt: skip

    def target(self, request, queryset, verb: str) -> Target | None:
        """The action's contacts; None (with a message) when they span organizations or are too many."""
        whole = request.POST.get("select_across") == "1"
        org_id = self._one_org(request, queryset, verb)
        if org_id is None:
            return None
        org = Organization.objects.get(pk=org_id)
        membership = acting_membership(request, org_id)
        if whole:
            # The list's conditions, counted now: the job refuses to run on a list that changed since.
            return Target(org, membership, contact_list(request).smart_list(), queryset.count(), True)
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: MAX_IDS + 1])
        if len(ids) > MAX_IDS:
            self.message_user(request, f"Select at most {MAX_IDS:,} contacts, or the whole list.", messages.ERROR)
            return None
        return Target(org, membership, SmartList(ids=ids), len(ids), False)

    def _one_org(self, request, queryset, verb: str) -> int | None:
        """The org of the chosen contacts; None (with a message) when they span several."""
        orgs = list(queryset.order_by().values_list("org_id", flat=True).distinct()[:2])
        if len(orgs) != 1:
            self.message_user(
                request, f"{verb} contacts of one organization at a time: filter by it first.", messages.ERROR
            )
            return None
        return orgs[0]

    # --- export ---

    @admin.action(description="Export the chosen contacts (CSV, every column)", permissions=["view"])
    def export_selected(self, request, queryset):
        """The API's export (contacts.export), streamed, of the ticked contacts or the whole list."""
        target = self.target(request, queryset, "Export")
        if target is None:
            return None
        columns = known_columns(FieldRegistry.for_org(target.org.pk))
        rows = target.rows().order_by(*LIST_ORDER)
        response = StreamingHttpResponse(
            export_lines(target.org.pk, rows, columns, "csv"), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="contacts-org-{target.org.pk}.csv"'
        return response

    # --- bulk actions as jobs ---

    @admin.action(description="Tag the chosen contacts…", permissions=["change"])
    def tag_selected(self, request, queryset):
        return self.bulk(request, queryset, "add_tags")

    @admin.action(description="Untag the chosen contacts…", permissions=["change"])
    def untag_selected(self, request, queryset):
        return self.bulk(request, queryset, "remove_tags")

    @admin.action(description="Assign the chosen contacts…", permissions=["change"])
    def assign_selected(self, request, queryset):
        return self.bulk(request, queryset, "assign_to")

    @admin.action(description="Change the chosen contacts (tags, assignment, a field)…", permissions=["change"])
    def bulk_change(self, request, queryset):
        return self.bulk(request, queryset, None)

    @admin.action(description="Move the chosen contacts to the trash…", permissions=["delete"])
    def delete_selected(self, request, queryset):
        """Ticked contacts: Django's confirmation, then contacts.trash (delete_queryset). The whole
        list: a bulk job that moves them to the trash, which its undo brings back."""
        if request.POST.get("select_across") == "1":
            return self.bulk(request, queryset, "trash")
        return django_delete_selected(self, request, queryset)

    def bulk(self, request, queryset, operation: str | None):
        """The API's bulk action (contacts.bulk) as a job of this staff user: a form first (the tags,
        the assignee…), then the job's page, which follows its progress."""
        verb = TITLES.get(operation, "Change")
        target = self.target(request, queryset, verb)
        if target is None:
            return None
        # "pick": a field was chosen for "set": the form again, with that field's own value editor.
        applying = "apply" in request.POST and "pick" not in request.POST
        chosen = request.POST.get("field")
        initial = {name: request.POST[name] for name in ("operation", "field", "tags") if request.POST.get(name)}
        form = BulkChangeForm(
            target.org, request.POST if applying else None, operation=operation, chosen=chosen, initial=initial
        )
        if form.is_valid():
            job = self._start(request, target, form)
            if job is not None:
                url = reverse("admin:jobs_job_change", args=[job.pk])
                messages.success(
                    request,
                    format_html('{} {} of {}: <a href="{}">job #{}</a> (its progress, cancel and undo).',
                                verb, target.described, target.org, url, job.pk),
                )  # fmt: skip
                return HttpResponseRedirect(url)
        return TemplateResponse(request, "admin/contacts/contact/bulk_change.html", self._bulk_context(
            request, target, form, verb
        ))  # fmt: skip

    def _start(self, request, target: Target, form: BulkChangeForm):
        membership = target.membership
        normalizer = ContactNormalizer.for_org(target.org, None if as_staff(membership) else membership)
        expected = target.count
        if target.whole_list:  # the count the staff user confirmed on the form, not the count now
            confirmed = request.POST.get("expected_count", "")
            expected = int(confirmed) if confirmed.isdigit() and len(confirmed) <= 18 else expected
        given = {"action": form.action(), "expected_count": expected}
        try:
            return start_bulk(normalizer, request.user.pk, given, target.smart_list, staff=as_staff(membership))
        except InvalidInput as exc:
            for error in exc.field_errors:
                form.add_error(None, f"{error.attr}: {error.detail}" if error.attr else error.detail)
            return None

    def _bulk_context(self, request, target: Target, form, verb: str) -> dict:
        # Django runs an action only with ticked rows, also for "select all" (its page's rows are ticked).
        ids = target.smart_list.ids or request.POST.getlist("_selected_action")[: self.list_per_page]
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{verb} {target.described} of {target.org}",
            "form": form,
            "ids": ids,
            "whole_list": target.whole_list,
            "expected_count": target.count,
            "action_name": request.POST.get("action", "bulk_change"),
            "changelist_url": reverse("admin:contacts_contact_changelist"),
        }
