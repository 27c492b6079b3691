"""The contact admin: the list (columns, custom-field columns, saved views, filters, actions) and
the change form (typed custom-field editors by folder, the latest history), through the services
the API uses (contacts.services, contacts.normalize)."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.http import JsonResponse
from django.urls import path, reverse

from contacts.admin.actions import ContactActionsMixin
from contacts.admin.base import FastListMixin, dnc_badge, parse_ids, person, readable_phone, shown
from contacts.admin.forms import CUSTOM_FIELD, AssigneeSelect, ContactAdminForm, custom_fieldsets, form_for_org
from contacts.admin.importing import ImportPageMixin
from contacts.admin.listing import LIST_FILTERS, ContactChangeList, contact_list, custom_filters
from contacts.admin.nothing_lost import NothingLostAdminMixin, recent_history
from contacts.contact_fields import WRITABLE_FIELDS
from contacts.models import Contact, Opportunity
from contacts.search.free_text import q_rows
from contacts.services import create_contact, update_contact
from crm.limits import MAX_Q_LENGTH
from orgs.admin import OrgScopedAdminMixin, staff_scope

ASSIGNEES_PAGE = 20
NAME_PARTS = ("first_name", "last_name")
# The built-in fields of the table (contacts.contact_fields), the display name first, its parts side by side.
MAIN_FIELDS = [
    "org", "name", NAME_PARTS,
    *(spec.name for spec in WRITABLE_FIELDS if spec.name not in ("name", *NAME_PARTS)),
]  # fmt: skip


def custom_column(key: str, label: str, ordering=None):
    """A list column showing one custom value of each contact; sorted by `ordering` when given."""

    @admin.display(description=label, empty_value="", ordering=ordering)
    def column(contact: Contact) -> str:
        value = contact.custom.get(key)
        return "" if value is None else shown(value)

    column.__name__ = f"custom_{key}"
    return column


class OpportunityInline(admin.TabularInline):
    model = Opportunity
    extra = 0
    fields = ["name", "pipeline", "stage", "status", "value", "currency", "assigned_to", "created_at"]
    readonly_fields = ["created_at"]
    show_change_link = True

    # The parent contact's reach (`obj`): any member of its org works on its opportunities (DESIGN §2).
    def has_view_permission(self, request, obj=None):
        return obj is None or staff_scope(request).sees_org(obj.org_id)

    def has_add_permission(self, request, obj=None):
        return staff_scope(request).may_write(obj.org_id if obj is not None else None)

    def has_change_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_add_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assigned_to":
            kwargs["widget"] = AssigneeSelect(db_field, self.admin_site, getattr(request, "_contact_form_org_id", None))
            kwargs["queryset"] = staff_scope(request).members()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Contact)
class ContactAdmin(
    OrgScopedAdminMixin, ContactActionsMixin, NothingLostAdminMixin, ImportPageMixin, FastListMixin, admin.ModelAdmin
):
    form = ContactAdminForm
    list_display = [
        "display_name", "email", "phone_number", "company", "tag_list", "dnc_flag", "assignee", "organization",
        "created",
    ]  # fmt: skip
    list_display_links = ["display_name"]
    list_filter = LIST_FILTERS
    list_select_related = ["assigned_to", "org"]
    search_fields = ["search_text"]  # searched through q_rows (see get_search_results), as the API's `q`
    search_help_text = "Substring of name, email, phone (by digits) or company."
    autocomplete_fields = ["org"]
    readonly_fields = ["created_at", "updated_at"]
    ordering = ["-id"]
    sortable_by = ["created", "email", "company"]
    inlines = [OpportunityInline]
    # No per-choice counts: one count per tag or option over a million contacts is not a sidebar.
    show_facets = admin.ShowFacets.NEVER
    change_list_template = "admin/contacts/contact/change_list.html"
    change_form_template = "admin/contacts/contact/change_form.html"

    class Media:
        css = {"all": ["contacts/admin.css"]}

    # --- list columns ---

    @admin.display(description="name", ordering="name")
    def display_name(self, obj: Contact) -> str:
        return str(obj)

    @admin.display(description="phone")
    def phone_number(self, obj: Contact) -> str:
        return readable_phone(obj.phone)

    @admin.display(description="tags")
    def tag_list(self, obj: Contact) -> str:
        return ", ".join(obj.tags)

    @admin.display(description="DNC", empty_value="")
    def dnc_flag(self, obj: Contact) -> str:
        return dnc_badge(obj.dnc)

    @admin.display(description="assigned to", empty_value="")
    def assignee(self, obj: Contact) -> str:
        return person(obj.assigned_to) if obj.assigned_to_id else ""

    @admin.display(description="organization")
    def organization(self, obj: Contact) -> str:
        return obj.org.name

    @admin.display(description="created", ordering="created_at")
    def created(self, obj: Contact) -> str:
        return obj.created_at.strftime("%Y-%m-%d")

    def get_list_display(self, request):
        state = contact_list(request)
        columns = [c for c in self.list_display if c != "organization" or state.spans_orgs]
        return [*columns[:-1], *self.custom_columns(request), columns[-1]]

    def get_sortable_by(self, request):
        columns = self.custom_columns(request)
        return [*self.sortable_by, *(column for column in columns if getattr(column, "admin_order_field", None))]

    @staticmethod
    def custom_columns(request) -> list:
        """The list's custom columns, made once per request: Django finds a sortable column by the
        identity of its function."""
        state = contact_list(request)
        if state.column_functions is None:
            state.column_functions = [custom_column(d.key, d.name, state.sort_of(d)) for d in state.columns]
        return state.column_functions

    def get_ordering(self, request):
        # Newest first: of one org by its (org, created_at, id) index; across orgs by the primary key.
        return ["-created_at", "-id"] if contact_list(request).org is not None else ["-id"]

    def get_list_filter(self, request):
        return [*LIST_FILTERS, *custom_filters(contact_list(request))]

    def get_search_results(self, request, queryset, search_term):
        term = search_term[:MAX_Q_LENGTH]
        return (queryset.filter(q_rows(term)), False) if term.strip() else (queryset, False)

    def get_changelist(self, request, **kwargs):
        return ContactChangeList

    def changelist_view(self, request, extra_context=None):
        state = contact_list(request)
        response = super().changelist_view(request, {"contact_list": state, **(extra_context or {})})
        for problem in dict.fromkeys(state.problems):
            self.message_user(request, problem, level="warning")
        return response

    # --- the change form ---

    def form_org(self, request, obj=None):
        """The organization the form edits a contact of: the contact's; for a new one the chosen
        (`?org=` or the posted one), else the staff user's only organization."""
        if obj is not None:
            return obj.org
        scope = staff_scope(request)
        asked = parse_ids([request.POST.get("org") or request.GET.get("org") or ""])
        if asked:
            return scope.orgs(writes=True).filter(pk=asked[0]).first()
        return scope.single_org()

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        org = self.form_org(request)
        return {**initial, "org": org.pk} if org is not None else initial

    def get_fieldsets(self, request, obj=None):
        org = self.form_org(request, obj)
        main = {"fields": MAIN_FIELDS if obj is None else ["organization", *MAIN_FIELDS[1:]]}
        if org is None:
            main["description"] = "Choose the organization: the form then shows its custom fields."
        record = [("Record", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]})] if obj else []
        return [(None, main), *custom_fieldsets(org), *record]

    def get_readonly_fields(self, request, obj=None):
        # A contact stays in its organization: its tags and values are rows of that organization.
        return ["organization", *self.readonly_fields] if obj is not None else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        org = self.form_org(request, obj)
        request._contact_form_org_id = org.pk if org is not None else None
        if kwargs.get("fields"):
            kwargs["fields"] = [name for name in kwargs["fields"] if not name.startswith(CUSTOM_FIELD)]
        base = super().get_form(request, obj, change=change, **kwargs)
        return form_for_org(base, org, obj, staff_scope(request))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assigned_to":
            kwargs["widget"] = AssigneeSelect(db_field, self.admin_site, getattr(request, "_contact_form_org_id", None))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name in ("org", "assigned_to") and field is not None:
            # No links to add, change or delete users or organizations from a contact's form.
            for link in ("can_add_related", "can_change_related", "can_delete_related", "can_view_related"):
                setattr(field.widget, link, False)
        return field

    def change_view(self, request, object_id, form_url="", extra_context=None):
        contact = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if contact is not None:
            extra["recent_history"] = recent_history(contact)
            extra["history_url"] = reverse("admin:contacts_contact_history", args=[contact.pk])
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request, obj, form, change):
        """Through the same services as the API (tags and custom values are rows of their own)."""
        values = {k: v for k, v in form.normalized.items() if k not in ("org", "org_id")}
        if change:
            if values:
                locked = Contact.objects.select_for_update().get(pk=obj.pk)
                update_contact(locked, values, form.membership, fields=form.custom_fields)
        else:
            create_contact(obj.org_id, values, form.membership, fields=form.custom_fields, instance=obj)

    def save_formset(self, request, form, formset, change):
        for inline_form in formset.forms:
            if hasattr(inline_form.instance, "contact_id"):
                inline_form.instance.org_id = form.instance.org_id  # an opportunity lives in its contact's org
        super().save_formset(request, form, formset, change)

    # --- pages beside the list ---

    def get_urls(self):
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}"
        view = self.admin_site.admin_view
        return [
            path("import/", view(self.import_view), name=f"{name}_import"),
            path("assignees/", view(self.assignees_view), name=f"{name}_assignees"),
            *self.nothing_lost_urls(),
            *super().get_urls(),
        ]

    def assignees_view(self, request):
        """Autocomplete of assignees (select2's JSON): members of the contact's organization the staff
        user reaches; an assigned-only member assigns to themselves only (DESIGN §2)."""
        scope = staff_scope(request)
        users = scope.members()
        org_id = parse_ids([request.GET.get("org", "")])
        if org_id:
            membership = scope.membership(org_id[0])
            users = users.filter(memberships__org_id=org_id[0]) if membership is not None else users.none()
            if membership is not None and membership.sees_only_assigned and membership.pk is not None:
                users = users.filter(pk=request.user.pk)
        term = request.GET.get("term", "").strip()[:100]
        if term:
            fields = ("username", "email", "first_name", "last_name")
            users = users.filter(Q(*[(f"{f}__icontains", term) for f in fields], _connector=Q.OR))
        page = max(1, int(request.GET.get("page", "1"))) if request.GET.get("page", "1").isdigit() else 1
        start = (page - 1) * ASSIGNEES_PAGE
        found = list(users.order_by("email", "id")[start : start + ASSIGNEES_PAGE + 1])
        results = [{"id": str(u.pk), "text": person(u)} for u in found[:ASSIGNEES_PAGE]]
        return JsonResponse({"results": results, "pagination": {"more": len(found) > ASSIGNEES_PAGE}})
