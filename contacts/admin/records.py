"""Opportunities and saved views in the admin. A saved view is validated by the search compiler
before it is stored, as `PUT /contacts/views` validates each view, and opens the contact list
filtered by it."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from contacts.admin.base import FastListMixin, parse_ids
from contacts.admin.forms import AssigneeSelect
from contacts.export import known_columns
from contacts.models import Opportunity, SmartListView
from contacts.search import SearchCompiler
from crm.errors import FieldError
from orgs.admin import OrgFilter, OrgScopedAdminMixin, staff_scope

VIEW_FIELDS = ("query", "q", "sort", "columns")


@admin.register(Opportunity)
class OpportunityAdmin(OrgScopedAdminMixin, FastListMixin, admin.ModelAdmin):
    list_display = ["name", "contact", "status", "value", "currency", "pipeline", "stage", "org", "created_at"]
    list_filter = [OrgFilter, "status"]
    list_select_related = ["contact", "org"]
    search_fields = ["name"]
    autocomplete_fields = ["contact"]
    exclude = ["org"]
    ordering = ["-id"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assigned_to":
            kwargs["widget"] = AssigneeSelect(db_field, self.admin_site)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        obj.org_id = obj.contact.org_id  # invariant: an opportunity lives in its contact's org
        super().save_model(request, obj, form, change)


class SmartListViewForm(forms.ModelForm):
    """A saved view, checked as a search: an unknown field or operator, a value of the wrong type,
    a view naming itself… are refused with the compiler's message, on the part they are about."""

    class Meta:
        model = SmartListView
        fields = ["org", "name", "query", "q", "sort", "columns", "position"]
        help_texts = {
            "query": 'A smart-list filter (docs/filters.md), e.g. {"groups": [{"conditions": '
            '[{"field": "tags", "op": "contains", "value": "vip"}]}]}.',
            "sort": 'e.g. [{"field": "created_at", "direction": "desc"}]',
            "columns": 'Fields shown as list columns, e.g. ["custom.plan"]',
        }

    def clean(self):
        cleaned = super().clean()
        org = cleaned.get("org") or (self.instance.org if self.instance.org_id else None)
        if org is None or any(name in self.errors for name in VIEW_FIELDS):
            return cleaned
        compiler = SearchCompiler.for_org(org)
        errors: list[FieldError] = []
        itself = self.instance if self.instance.pk else None
        query, q, sort = (cleaned.get(name) for name in ("query", "q", "sort"))
        parts = compiler.validate_view(query, q, sort, "view", errors, itself)
        known = set(known_columns(compiler.registry))
        columns = cleaned.get("columns") or []
        if not isinstance(columns, list):
            errors.append(FieldError("view.columns", "wrong_type", "Expected a list of field names."))
        else:
            errors += [
                FieldError(f"view.columns.{i}", "unknown_field", f"No field {c!r} in this organization.")
                for i, c in enumerate(columns)
                if c not in known
            ]
        for error in errors:
            part = (error.attr or "").split(".")[1] if (error.attr or "").count(".") else None
            self.add_error(part if part in self.fields else None, f"{error.attr}: {error.detail}")
        if not errors:
            cleaned.update(parts)  # stored normalized, as the API stores it
        return cleaned


@admin.register(SmartListView)
class SmartListViewAdmin(OrgScopedAdminMixin, FastListMixin, admin.ModelAdmin):
    form = SmartListViewForm
    list_display = ["name", "org", "position", "open_list", "updated_at"]
    list_filter = [OrgFilter]
    list_select_related = ["org"]
    search_fields = ["name"]
    autocomplete_fields = ["org"]
    ordering = ["org_id", "position", "id"]
    readonly_fields = ["open_list"]

    @admin.display(description="contacts")
    def open_list(self, view: SmartListView) -> str:
        if not view.pk:
            return "—"
        url = f"{reverse('admin:contacts_contact_changelist')}?view={view.pk}"
        return format_html('<a href="{}">Open the contact list</a>', url)

    def get_changeform_initial_data(self, request):
        """A view saved from the contact list arrives with its filters: `?org=&query=&q=&columns=`."""
        initial = super().get_changeform_initial_data(request)
        for name in ("query", "columns"):
            raw = request.GET.get(name)
            if raw and name == "columns":
                initial[name] = [part for part in raw.split(",") if part]
            elif raw:
                try:
                    initial[name] = json.loads(raw)
                except ValueError:
                    initial.pop(name, None)
        org = parse_ids([request.GET.get("org", "")])
        if org and staff_scope(request).sees_org(org[0]):
            initial["org"] = org[0]
        return initial
