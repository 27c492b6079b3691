"""Django admin for contacts, opportunities and saved views, built to stay fast on millions of rows.

- No exact counts: `show_full_result_count = False` and a paginator that counts at most
  `CAP` rows and falls back to the planner's estimate beyond that.
- Newest first by primary key (served by the pk index, unlike a sort on created_at across orgs).
- Search goes through `search_text` (trigram-indexed, case-folded), the same haystack as `q` in the API.
- Filters never run `SELECT DISTINCT` over the table: orgs and tags come from their own tables,
  sources from the most recent rows.
- Edits are validated by ContactNormalizer, the same path as the API and import.
- Nothing is lost (DESIGN §4): delete moves to the trash; the trash, a contact's history, merge and
  duplicates pages call the API's services (contacts.trash, contacts.merge, contacts.duplicates).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import cached_property

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from contacts import duplicates
from contacts.bulk import start as start_bulk
from contacts.contact_fields import WRITABLE_FIELDS
from contacts.export import export_lines, known_columns
from contacts.importing import ContactImporter, parse_options, read_csv
from contacts.importing.jobs import UPLOAD_PART_BYTES, Starter, start_csv
from contacts.importing.options import DEDUPE_CHOICES, ON_DUPLICATE_CHOICES, split_tags
from contacts.merge import MAX_FROM, MERGED_FIELDS, merge, restore_into
from contacts.models import (
    Contact,
    ContactTag,
    Opportunity,
    SmartListView,
    TrashedContact,
    attach_tags_and_custom,
)
from contacts.normalize import ContactNormalizer
from contacts.search.fields import FieldRegistry
from contacts.search.free_text import q_rows
from contacts.services import create_contact, duplicate_email_conflict, update_contact
from contacts.smart_list import MAX_IDS, SmartList
from contacts.trash import move_to_trash, restore_many
from contacts.trash import purge as trash_purge
from crm.db_security import as_org, rls_bypass
from crm.errors import DomainError, InvalidInput, TooLarge
from customization.catalog import custom_fields_by_key
from customization.models import Tag
from history.models import ContactChange
from orgs.admin import OrgFilter
from orgs.models import Membership, Organization


class CappedCountPaginator(Paginator):
    """Counts exactly up to CAP rows; past that, the planner's estimate (never below CAP)."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        exact = self.object_list.order_by()[: self.CAP + 1].count()
        if exact <= self.CAP:
            return exact
        try:
            plan = json.loads(self.object_list.order_by().explain(format="json"))
            return max(self.CAP, int(plan[0]["Plan"]["Plan Rows"]))
        except (ValueError, KeyError, IndexError, TypeError):
            return self.CAP


class FastListMixin:
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50


# --- filters -----------------------------------------------------------------------------------------


class TagFilter(admin.SimpleListFilter):
    """Tags of the catalog (the selected org's, or the first ones overall); matches with the GIN index."""

    title = "tag"
    parameter_name = "tag"
    limit = 100

    def lookups(self, request, model_admin):
        tags = Tag.objects.all()
        org = request.GET.get(OrgFilter.parameter_name, "")
        if org.isdigit():
            tags = tags.filter(org_id=int(org))
        names = list(tags.order_by("name").values_list("name", flat=True).distinct()[: self.limit])
        if self.value() and self.value() not in names:
            names.append(self.value())  # a filter with no choices would not be applied at all
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        return queryset.filter(pk__in=ContactTag.objects.filter(tag__name=self.value()).values("contact_id"))


class SourceFilter(admin.SimpleListFilter):
    """Sources seen on the most recent contacts (no DISTINCT over the whole table)."""

    title = "source"
    parameter_name = "source"
    sample = 5000

    def lookups(self, request, model_admin):
        recent = Contact.objects.order_by("-id").values_list("source", flat=True)[: self.sample]
        sources = sorted({source for source in recent if source})
        value = self.value()
        if value and value not in sources:
            sources.append(value)
        return [(source, source) for source in sources[:50]]

    def queryset(self, request, queryset):
        return queryset.filter(source=self.value()) if self.value() else queryset


# --- contact form: validated by ContactNormalizer --------------------------------------------------------


SET_BELOW = ("name", "assigned_to")


class ContactAdminForm(forms.ModelForm):
    tags = forms.CharField(
        required=False,
        help_text="Comma- or semicolon-separated. New names join the catalog.",
        widget=forms.TextInput(attrs={"size": 80}),
    )
    custom = forms.JSONField(
        required=False,
        help_text='Custom values as JSON, keyed by custom-field key, e.g. {"plan": "Gold"}.',
    )

    class Meta:
        model = Contact
        fields = ["org", *(spec.name for spec in WRITABLE_FIELDS if spec.column)]
        help_texts = {"name": "Display name. Leave first/last name unchanged to have it split into them."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["tags"] = ", ".join(self.instance.tags)
            self.initial["custom"] = self.instance.custom
        self.normalized: dict = {}
        self.custom_fields: dict = {}

    def clean_tags(self):
        return split_tags(self.cleaned_data.get("tags") or "")

    def clean(self):
        cleaned = super().clean()
        org = cleaned.get("org") or (self.instance.org if self.instance.org_id else None)
        if org is None or self.errors:
            return cleaned
        existing = self.instance if self.instance.pk else None
        # `name` and the assignee are read below: a name alone is split, the assignee is a user.
        data = {spec.name: cleaned.get(spec.name) for spec in WRITABLE_FIELDS if spec.name not in SET_BELOW}
        names_changed = {"first_name", "last_name"} & set(self.changed_data)
        if existing is None or ("name" in self.changed_data and not names_changed):
            data["name"] = cleaned.get("name") or ""
        if existing is None and cleaned.get("name") and not (cleaned.get("first_name") or cleaned.get("last_name")):
            del data["first_name"], data["last_name"]  # a name alone is split into first/last
        custom = cleaned.get("custom")
        if custom is not None and not isinstance(custom, dict):
            self.add_error("custom", "Expected a JSON object.")
            return cleaned
        custom = custom or {}
        if existing is not None:  # the form holds the whole object: keys removed from it are cleared
            custom = {**{key: None for key in existing.custom if key not in custom}, **custom}
        data["custom"] = custom
        assignee = cleaned.get("assigned_to")
        data["assigned_to"] = assignee.pk if assignee is not None else None

        normalizer = ContactNormalizer.for_org(org)
        self.custom_fields = normalizer.custom_fields
        values, errors = normalizer.clean(data, existing=existing)
        for error in errors:
            field = (error.attr or "").split(".")[0]
            message = f"{error.attr}: {error.detail}" if error.attr and "." in error.attr else error.detail
            self.add_error(field if field in self.fields else None, message)
        if not errors and values.get("email_key"):
            clash = Contact.objects.filter(org_id=org.pk, email_key=values["email_key"]).exclude(pk=self.instance.pk)
            if clash.exists():
                self.add_error("email", "Another contact of this organization has this email.")
                return cleaned
        if not errors:
            self.normalized = values
            for spec in WRITABLE_FIELDS:  # the form shows the normalized values (the assignee stays a user)
                if spec.column and spec.type != "user" and spec.column in values:
                    cleaned[spec.name] = values[spec.column]
        return cleaned


class BulkChangeForm(forms.Form):
    """One bulk action (contacts.bulk) on the selected contacts of one org."""

    OPERATIONS = [
        ("add_tags", "Add tags"),
        ("remove_tags", "Remove tags"),
        ("assign_to", "Assign to"),
        ("set", "Set a field"),
        ("clear", "Clear a field"),
    ]
    operation = forms.ChoiceField(choices=OPERATIONS)
    tags = forms.CharField(required=False, help_text="Add or remove tags: names, comma-separated.")
    assignee = forms.ModelChoiceField(queryset=None, required=False, help_text="Assign to: empty unassigns.")
    field = forms.ChoiceField(required=False, help_text="Set or clear: a built-in field or a custom one.")
    value = forms.CharField(required=False, help_text="Set: the value, as the API takes it (yes/no, a date…).")

    def __init__(self, org: Organization, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = get_user_model().objects.filter(memberships__org=org).order_by("email")
        builtin = [(spec.name, spec.label) for spec in WRITABLE_FIELDS if spec.name != "tags"]
        custom = [(f"custom.{key}", field.name) for key, field in custom_fields_by_key(org.id).items()]
        self.fields["field"].choices = [("", "—"), *builtin, *custom]

    def clean(self):
        data = super().clean()
        operation = data.get("operation")
        if operation in ("add_tags", "remove_tags") and not split_tags(data.get("tags") or ""):
            self.add_error("tags", "Name at least one tag.")
        if operation in ("set", "clear") and not data.get("field"):
            self.add_error("field", "Choose a field.")
        return data

    def action(self) -> dict:
        """The body's `action`, as `POST /contacts/bulk` takes it."""
        data = self.cleaned_data
        operation = data["operation"]
        if operation in ("add_tags", "remove_tags"):
            return {operation: split_tags(data["tags"])}
        if operation == "assign_to":
            return {"assign_to": data["assignee"].pk if data["assignee"] else None}
        if operation == "set":
            return {"set": {data["field"]: data["value"]}}
        return {"clear": [data["field"]]}


class ContactChangeList(ChangeList):
    """The page's tags (the tags column) read in one query, not one per row."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = attach_tags_and_custom(list(self.result_list))


class OpportunityInline(admin.TabularInline):
    model = Opportunity
    extra = 0
    fields = ["name", "pipeline", "stage", "status", "value", "currency", "assigned_to", "created_at"]
    readonly_fields = ["created_at"]
    raw_id_fields = ["assigned_to"]
    show_change_link = True


# --- import page -------------------------------------------------------------------------------------------


class ImportForm(forms.Form):
    org = forms.IntegerField(label="Organization id", min_value=1)
    file = forms.FileField(help_text="UTF-8 CSV (BOM optional): a header row of contact fields, tags, custom.<key>.")
    dedupe_on = forms.ChoiceField(choices=[(c, c) for c in DEDUPE_CHOICES], initial="email_or_phone")
    on_duplicate = forms.ChoiceField(choices=[(c, c) for c in ON_DUPLICATE_CHOICES], initial="update")
    tags = forms.CharField(required=False, help_text="Added to every row; comma-separated.")
    dry_run = forms.BooleanField(required=False, help_text="Validate and report; write nothing.")
    run_async = forms.BooleanField(
        required=False,
        label="Run in the background",
        help_text="For big files: a job of the task queue, with progress, an error file and undo.",
    )

    def clean_org(self):
        org = Organization.objects.filter(pk=self.cleaned_data["org"]).first()
        if org is None:
            raise forms.ValidationError("No organization with this id.")
        return org

    def clean(self):
        # The size cap depends on the choice of a background job, a later field than the file.
        cleaned = super().clean()
        upload, run_async = cleaned.get("file"), cleaned.get("run_async")
        limit = settings.ASYNC_IMPORT_MAX_BODY_BYTES if run_async else settings.IMPORT_MAX_BODY_BYTES
        if upload is not None and upload.size > limit:
            hint = "" if run_async else " Choose “Run in the background” for a bigger file."
            self.add_error("file", f"The file is larger than {limit:,} bytes.{hint}")
        return cleaned


# --- nothing is lost: trash, history, merge, duplicates (DESIGN §4) ------------------------------------
# Staff pages over the services the API uses (contacts.trash, contacts.merge, contacts.duplicates,
# history.models); none of them writes a row by itself.

HISTORY_PAGE = 50
DUPLICATES_PAGE = 20
MERGE_CHOICES = {f.name: f.label for f in WRITABLE_FIELDS if f.name in MERGED_FIELDS}


def staff_membership(org_id: int, user) -> Membership:
    """An unsaved owner membership of the whole org, for the services that take a member (the
    duplicate finder, purge): staff sees every contact of the org, as an owner does."""
    return Membership(org_id=org_id, user_id=user.pk, role=Membership.Role.OWNER, data_scope=Membership.DataScope.ALL)


def by_org(pairs) -> dict[int, list[int]]:
    """{org id: [ids]} of (org id, id) pairs."""
    grouped: dict[int, list[int]] = {}
    for org_id, pk in pairs:
        grouped.setdefault(org_id, []).append(pk)
    return grouped


def parse_ids(raw: str | list[str]) -> list[int]:
    """Distinct ids, in order, from "1,2,3" or a list of them; junk ignored."""
    parts = raw if isinstance(raw, list) else raw.split(",")
    ids = [int(p) for p in (s.strip() for s in parts) if p.isascii() and p.isdigit() and len(p) <= 18]
    return list(dict.fromkeys(ids))


def shown(value) -> str:
    """A history or merge value as text: lists joined, booleans as yes/no, empty as —."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def error_text(exc: DomainError) -> str:
    details = [f"{e.attr}: {e.detail}" if e.attr else e.detail for e in exc.errors]
    return " ".join(dict.fromkeys([exc.detail, *details]))


class NothingLostAdminMixin:
    """The contact admin's trash, history, merge and duplicates pages."""

    def nothing_lost_urls(self) -> list:
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}"
        views = [
            ("trash/", self.trash_view, "trash"),
            ("merge/", self.merge_view, "merge"),
            ("duplicates/", self.duplicates_view, "duplicates"),
            ("duplicates/dismiss/", self.dismiss_view, "duplicates_dismiss"),
        ]
        return [path(route, self.admin_site.admin_view(view), name=f"{name}_{suffix}") for route, view, suffix in views]

    def page_context(self, request, title: str, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "changelist_url": reverse("admin:contacts_contact_changelist"),
            "trash_days": settings.TRASH_DAYS,
            **extra,
        }

    # Deleting moves to the trash, as the API's DELETE does (contacts.trash): restorable whole.
    def delete_model(self, request, obj):
        move_to_trash(obj.org_id, [obj.pk], deleted_by=request.user.pk)
        self._trashed_message(request, 1)

    def delete_queryset(self, request, queryset):
        grouped = by_org(queryset.order_by().values_list("org_id", "pk"))
        moved = sum(len(move_to_trash(org_id, ids, deleted_by=request.user.pk)) for org_id, ids in grouped.items())
        self._trashed_message(request, moved)

    def delete_view(self, request, object_id, extra_context=None):
        return super().delete_view(request, object_id, {"trash_days": settings.TRASH_DAYS, **(extra_context or {})})

    def _trashed_message(self, request, count: int) -> None:
        messages.info(
            request,
            format_html(
                "{} moved to the trash: restore from <a href='{}'>the trash</a> within {} days.",
                "1 contact" if count == 1 else f"{count:,} contacts",
                reverse("admin:contacts_contact_trash"),
                settings.TRASH_DAYS,
            ),
        )

    # --- trash ---

    def trash_view(self, request):
        """The trashed contacts of every org (filter by org, search by name/email), newest first;
        restore or purge the selected ones. A page of this admin, not a ModelAdmin of TrashedContact:
        Django's admin refuses models with a composite primary key."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            ids = parse_ids(request.POST.getlist("ids"))
            action = request.POST.get("action")
            if action == "restore" and self.has_change_permission(request):
                self._restore(request, ids)
            elif action == "restore_into" and self.has_change_permission(request):
                self._restore_into(request, ids)
            elif action == "purge" and self.has_delete_permission(request):
                if request.POST.get("post") != "yes":
                    return self._purge_confirmation(request, ids)
                self._purge(request, ids)
            else:
                raise PermissionDenied
            return HttpResponseRedirect(request.get_full_path())
        rows = TrashedContact.objects.select_related("org", "deleted_by").order_by("-deleted_at", "-contact_id")
        org, q = request.GET.get("org", ""), request.GET.get("q", "").strip()[:200]
        if parse_ids([org]):
            rows = rows.filter(org_id=int(org))
        if q:
            rows = rows.filter(Q(name__icontains=q) | Q(email__icontains=q))
        page = CappedCountPaginator(rows, FastListMixin.list_per_page).get_page(request.GET.get("p"))
        expiry = dt.timedelta(days=settings.TRASH_DAYS)
        entries = [(entry, entry.deleted_at + expiry) for entry in page]
        orgs = Organization.objects.only("id", "name").order_by("id")[: OrgFilter.limit]
        context = self.page_context(request, "Trash", page=page, entries=entries, orgs=orgs, org=org, q=q)
        return TemplateResponse(request, "admin/contacts/contact/trash.html", context)

    def _restore(self, request, ids: list[int]) -> None:
        """contacts.trash.restore_many per org; those whose email a live contact took stay, named."""
        entries = TrashedContact.objects.filter(contact_id__in=ids).values_list("org_id", "contact_id", "email")
        emails = {contact_id: (org_id, email) for org_id, contact_id, email in entries}
        restored: list[int] = []
        for org_id, org_ids in by_org((org_id, pk) for pk, (org_id, _) in emails.items()).items():
            restored += restore_many(org_id, sorted(org_ids))
        if restored:
            messages.success(request, f"Restored {len(restored):,} contacts.")
        for contact_id in sorted(set(emails) - set(restored)):
            org_id, email = emails[contact_id]
            existing = duplicate_email_conflict(org_id, email, None).extra.get("existing_id") if email else None
            link = reverse("admin:contacts_contact_change", args=[existing]) if existing else ""
            messages.warning(
                request,
                format_html(
                    "Contact #{} stays in the trash: a live contact, <a href='{}'>#{}</a>, took its email {} "
                    "meanwhile. Change that contact's email and restore, or “Restore merged into the "
                    "contact that took its email”.",
                    contact_id, link, existing, email,
                ),
            )  # fmt: skip

    def _restore_into(self, request, ids: list[int]) -> None:
        """contacts.merge.restore_into: each one back without its email, merged into the live contact
        that took it (the API's `{"merge_into": id}` restore)."""
        entries = TrashedContact.objects.filter(contact_id__in=ids).values_list("org_id", "contact_id", "email")
        for org_id, contact_id, email in entries:
            existing = duplicate_email_conflict(org_id, email, None).extra.get("existing_id") if email else None
            if existing is None:
                messages.warning(request, f"Contact #{contact_id}: no live contact has its email; restore it instead.")
                continue
            try:
                _, merge_id = restore_into(staff_membership(org_id, request.user), contact_id, existing)
            except DomainError as exc:
                messages.error(request, f"Contact #{contact_id} stays in the trash: {error_text(exc)}")
            else:
                link = reverse("admin:contacts_contact_change", args=[existing])
                messages.success(
                    request,
                    format_html("Contact #{} restored into <a href='{}'>#{}</a>: merge #{}.", contact_id, link,
                                existing, merge_id),
                )  # fmt: skip

    def _purge_confirmation(self, request, ids: list[int]):
        entries = TrashedContact.objects.filter(contact_id__in=ids).select_related("org").order_by("-deleted_at")
        context = self.page_context(request, "Purge from the trash", entries=entries)
        return TemplateResponse(request, "admin/contacts/contact/trash_purge.html", context)

    def _purge(self, request, ids: list[int]) -> None:
        """contacts.trash.purge, each one for good (its history keeps a `purged` entry)."""
        purged = 0
        for org_id, contact_id in TrashedContact.objects.filter(contact_id__in=ids).values_list("org_id", "contact_id"):
            trash_purge(staff_membership(org_id, request.user), contact_id)
            purged += 1
        messages.success(request, f"Purged {purged:,} contacts for good.")

    # --- history ---

    def history_view(self, request, object_id, extra_context=None):
        """Every change to the contact (history.models, all sources), newest first, HISTORY_PAGE at a time;
        also for a contact in the trash. Replaces Django's LogEntry history (admin edits only)."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        contact_id = parse_ids([object_id])[:1]
        contact = Contact.objects.filter(pk__in=contact_id).first()
        entry = None if contact or not contact_id else TrashedContact.objects.filter(contact_id=contact_id[0]).first()
        if contact is None and entry is None:
            raise Http404("No contact with this id, alive or in the trash.")
        org_id = contact.org_id if contact else entry.org_id
        changes = ContactChange.objects.filter(org_id=org_id, contact_id=contact_id[0]).order_by("-id")
        before = request.GET.get("before", "")
        if before.isdigit() and len(before) <= 18:
            changes = changes.filter(id__lt=int(before))
        page = list(changes[: HISTORY_PAGE + 1])
        more = page[HISTORY_PAGE - 1].pk if len(page) > HISTORY_PAGE else None
        page = page[:HISTORY_PAGE]
        users = get_user_model().objects.in_bulk({c.user_id for c in page if c.user_id})
        rows = [
            {
                "change": change,
                "user": users.get(change.user_id),
                "fields": [(field, shown(pair[0]), shown(pair[1])) for field, pair in change.changes.items()],
            }
            for change in page
        ]
        context = self.page_context(
            request, f"History of {contact or entry}", contact=contact, trashed=entry, rows=rows, more=more,
            object_id=contact_id[0], **(extra_context or {}),
        )  # fmt: skip
        return TemplateResponse(request, "admin/contacts/contact/history.html", context)

    # --- merge ---

    @admin.action(description="Merge the selected contacts…")
    def merge_selected(self, request, queryset):
        """Opens the merge page (pick the survivor and the winners) for 2..MAX_FROM + 1 contacts of one org."""
        if self._one_org(request, queryset, "Merge") is None:
            return None
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: MAX_FROM + 2])
        if not 2 <= len(ids) <= MAX_FROM + 1:
            self.message_user(request, f"Select 2 to {MAX_FROM + 1} contacts to merge.", messages.ERROR)
            return None
        return HttpResponseRedirect(f"{reverse('admin:contacts_contact_merge')}?ids={','.join(map(str, ids))}")

    def merge_view(self, request):
        """contacts.merge.merge as this staff user: the survivor and each field's winner chosen here."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        ids = parse_ids(request.POST.get("ids") or request.GET.get("ids", ""))
        contacts = attach_tags_and_custom(list(Contact.objects.filter(pk__in=ids).order_by("pk")))
        changelist = reverse("admin:contacts_contact_changelist")
        problem = self._merge_problem(ids, contacts)
        if problem:
            messages.error(request, problem)
            return HttpResponseRedirect(changelist)
        normalizer = ContactNormalizer.for_org(contacts[0].org, None)
        if request.method == "POST":
            survivor, merge_id = self._merge(request, normalizer, contacts)
            if survivor is not None:
                url = reverse("admin:contacts_contact_change", args=[survivor.pk])
                merged = ", ".join(f"#{c.pk}" for c in contacts if c.pk != survivor.pk)
                messages.success(request, f"Merged {merged} into “{survivor}”: merge #{merge_id}.")
                return HttpResponseRedirect(url)
        context = self.page_context(
            request, f"Merge {len(contacts)} contacts of {contacts[0].org}", contacts=contacts,
            rows=self._merge_rows(contacts, normalizer), ids=",".join(str(c.pk) for c in contacts),
            survivor=(parse_ids([request.POST.get("survivor", "")]) or [contacts[0].pk])[0], max_from=MAX_FROM,
        )  # fmt: skip
        return TemplateResponse(request, "admin/contacts/contact/merge.html", context)

    @staticmethod
    def _merge_problem(ids: list[int], contacts: list[Contact]) -> str | None:
        if not 2 <= len(ids) <= MAX_FROM + 1:
            return f"Merge 2 to {MAX_FROM + 1} contacts."
        if len(contacts) != len(ids):
            missing = sorted(set(ids) - {c.pk for c in contacts})
            return f"No live contacts {missing}: merged or deleted meanwhile?"
        if len({c.org_id for c in contacts}) != 1:
            return "Merge contacts of one organization."
        return None

    @staticmethod
    def _merge_rows(contacts: list[Contact], normalizer: ContactNormalizer) -> list[dict]:
        """One row per field a merge chooses: its key (as `prefer` takes it), label and each contact's value."""

        def row(key: str, label: str, value_of) -> dict:
            return {"key": key, "label": label, "cells": [(c.pk, shown(value_of(c))) for c in contacts]}

        rows = [
            row(key, label, lambda c, key=key: c.assigned_to if key == "assigned_to" else getattr(c, key))
            for key, label in MERGE_CHOICES.items()
        ]
        rows += [
            row(f"custom.{key}", definition.name, lambda c, key=key: c.custom.get(key))
            for key, definition in normalizer.custom_fields.items()
        ]
        return rows

    def _merge(self, request, normalizer, contacts: list[Contact]):
        """(survivor, merge id), or (None, None) with the domain error shown as a message."""
        ids = [c.pk for c in contacts]
        into = parse_ids([request.POST.get("survivor", "")])
        if not into or into[0] not in ids:
            messages.error(request, "Choose the contact that stays.")
            return None, None
        choosable = [*MERGE_CHOICES, *(f"custom.{key}" for key in normalizer.custom_fields)]
        prefer = {}
        for key in choosable:
            winner = parse_ids([request.POST.get(f"prefer.{key}", "")])
            if winner:
                prefer[key] = winner[0]
        try:
            return merge(normalizer, request.user.pk, into[0], [i for i in ids if i != into[0]], prefer)
        except DomainError as exc:
            messages.error(request, f"Nothing was merged: {error_text(exc)}")
            return None, None

    # --- duplicates ---

    def duplicates_view(self, request):
        """The duplicate finder's groups of one org, best first, a page at a time."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        org = Organization.objects.filter(pk__in=parse_ids([request.GET.get("org", "")])).first()
        page, groups = None, []
        if org is not None:
            try:
                # The finder's SQL function is the app role's and reads the org claim: run it as a
                # request of the org would (as_org), then back to the admin's bypass role.
                with rls_bypass(), as_org(org.id):
                    page = duplicates.find(
                        staff_membership(org.id, request.user), DUPLICATES_PAGE, request.GET.get("cursor")
                    )
            except DomainError as exc:
                messages.error(request, error_text(exc))
            else:
                groups = [
                    {"group": g, "contacts": [page.contacts[i] for i in g.ids if i in page.contacts],
                     "ids": ",".join(map(str, g.ids))}
                    for g in page.groups
                ]  # fmt: skip
        orgs = Organization.objects.only("id", "name").order_by("id")[: OrgFilter.limit]
        context = self.page_context(request, "Duplicates", org=org, orgs=orgs, page=page, groups=groups)
        return TemplateResponse(request, "admin/contacts/contact/duplicates.html", context)

    def dismiss_view(self, request):
        """contacts.duplicates.dismiss: "not the same person", for the org's every user."""
        if request.method != "POST" or not self.has_change_permission(request):
            raise PermissionDenied
        org_id, ids = parse_ids([request.POST.get("org", "")]), parse_ids(request.POST.get("ids", ""))
        if not org_id:
            raise Http404("No organization.")
        try:
            duplicates.dismiss(staff_membership(org_id[0], request.user), ids)
        except DomainError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(
                request, f"Contacts {', '.join(f'#{i}' for i in ids)} are no longer offered as duplicates."
            )
        return HttpResponseRedirect(f"{reverse('admin:contacts_contact_duplicates')}?org={org_id[0]}")


@admin.register(Contact)
class ContactAdmin(NothingLostAdminMixin, FastListMixin, admin.ModelAdmin):
    form = ContactAdminForm
    list_display = ["__str__", "email", "phone", "company", "tag_list", "dnc", "assigned_to", "created_at"]
    list_display_links = ["__str__"]
    list_filter = [OrgFilter, SourceFilter, "dnc", TagFilter]
    list_select_related = ["assigned_to"]
    search_fields = ["search_text"]  # searched through q_rows (see get_search_results)
    search_help_text = "Substring of name, email, phone (by digits) or company."
    raw_id_fields = ["org", "assigned_to"]
    readonly_fields = ["created_at", "updated_at"]
    ordering = ["-id"]
    sortable_by = ["created_at", "email", "company"]
    inlines = [OpportunityInline]
    change_list_template = "admin/contacts/contact/change_list.html"
    actions = ["export_selected", "bulk_change", "merge_selected"]

    @admin.action(description="Export the selected contacts (CSV, every column)")
    def export_selected(self, request, queryset):
        """The API's export (contacts.export) of the selection: one org at a time, as every export."""
        org_id = self._one_org(request, queryset, "Export")
        if org_id is None:
            return None
        rows = Contact.objects.filter(org_id=org_id, pk__in=queryset.values("pk")).order_by("-created_at", "-id")
        columns = known_columns(FieldRegistry.for_org(org_id))
        response = StreamingHttpResponse(
            export_lines(org_id, rows, columns, "csv"), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="contacts-org-{org_id}.csv"'
        return response

    def _one_org(self, request, queryset, verb: str) -> int | None:
        """The org of the selected contacts; None (with a message) when they span several."""
        orgs = list(queryset.order_by().values_list("org_id", flat=True).distinct()[:2])
        if len(orgs) != 1:
            self.message_user(
                request, f"{verb} contacts of one organization at a time: filter by it first.", messages.ERROR
            )
            return None
        return orgs[0]

    @admin.action(description="Change the selected contacts (tags, assignment, a field)…")
    def bulk_change(self, request, queryset):
        """The API's bulk action (contacts.bulk) on the selection, as a job of this staff user:
        a form first, then the job's page (progress, cancel, undo)."""
        org_id = self._one_org(request, queryset, "Change")
        if org_id is None:
            return None
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: MAX_IDS + 1])
        if len(ids) > MAX_IDS:
            self.message_user(
                request, f"Select at most {MAX_IDS:,} contacts here (the API's query form has no cap).", messages.ERROR
            )
            return None
        org = Organization.objects.get(pk=org_id)
        form = BulkChangeForm(org, request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                job = start_bulk(
                    ContactNormalizer.for_org(org), request.user.id,
                    {"action": form.action(), "expected_count": len(ids)}, SmartList(ids=ids), staff=True,
                )  # fmt: skip
            except InvalidInput as exc:
                for error in exc.field_errors:
                    form.add_error(None, f"{error.attr}: {error.detail}" if error.attr else error.detail)
            else:
                messages.success(request, f"Changing {len(ids):,} contacts of {org}: job #{job.pk}.")
                return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Change {len(ids):,} contacts of {org}",
            "form": form,
            "ids": ids,
            "action_name": "bulk_change",
            "changelist_url": reverse("admin:contacts_contact_changelist"),
        }
        return TemplateResponse(request, "admin/contacts/contact/bulk_change.html", context)

    @admin.display(description="tags")
    def tag_list(self, obj: Contact) -> str:
        return ", ".join(obj.tags)

    def get_search_results(self, request, queryset, search_term):
        return (queryset.filter(q_rows(search_term[:200])), False) if search_term.strip() else (queryset, False)

    def get_changelist(self, request, **kwargs):
        return ContactChangeList

    def save_model(self, request, obj, form, change):
        """Through the same services as the API (tags and custom values are rows of their own)."""
        values = {k: v for k, v in form.normalized.items() if k not in ("org", "org_id")}
        if change:
            locked = Contact.objects.select_for_update().get(pk=obj.pk)
            update_contact(locked, values, fields=form.custom_fields)
        else:
            create_contact(obj.org_id, values, fields=form.custom_fields, instance=obj)

    def save_formset(self, request, form, formset, change):
        for inline_form in formset.forms:
            if hasattr(inline_form.instance, "contact_id"):
                inline_form.instance.org_id = form.instance.org_id  # an opportunity lives in its contact's org
        super().save_formset(request, form, formset, change)

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name=f"{opts.app_label}_{opts.model_name}_import",
            ),
            *self.nothing_lost_urls(),
            *super().get_urls(),
        ]

    def import_view(self, request):
        """Upload a CSV for an org and show the report (a system write, like `manage.py import_contacts`)."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        report = None
        form = ImportForm(request.POST or None, request.FILES or None)
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
        """An async import job of the whole org, started by this staff user (its header checked now)."""
        data = form.cleaned_data
        org, upload = data["org"], data["file"]
        try:
            options = self._import_options(data)
            # A refused file must leave no job or parts behind: this answer is a 200, not rolled back.
            with transaction.atomic():
                parts = upload.chunks(UPLOAD_PART_BYTES)
                job = start_csv(Starter(org.id, request.user.id, staff=True), options, parts, "file")
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
            normalizer = ContactNormalizer.for_org(org)
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


@admin.register(Opportunity)
class OpportunityAdmin(FastListMixin, admin.ModelAdmin):
    list_display = ["name", "contact", "status", "value", "currency", "pipeline", "stage", "created_at"]
    list_filter = [OrgFilter, "status"]
    list_select_related = ["contact"]
    search_fields = ["name"]
    raw_id_fields = ["contact", "assigned_to"]
    exclude = ["org"]
    ordering = ["-id"]

    def save_model(self, request, obj, form, change):
        obj.org_id = obj.contact.org_id  # invariant: an opportunity lives in its contact's org
        super().save_model(request, obj, form, change)


@admin.register(SmartListView)
class SmartListViewAdmin(FastListMixin, admin.ModelAdmin):
    list_display = ["name", "org", "position", "updated_at"]
    list_filter = [OrgFilter]
    list_select_related = ["org"]
    search_fields = ["name"]
    raw_id_fields = ["org"]
    ordering = ["org_id", "position", "id"]
