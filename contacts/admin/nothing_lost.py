"""The contact admin's "nothing is lost" pages (DESIGN §4): the trash, a contact's history, merge
and duplicates. Staff pages over the services the API uses (contacts.trash, contacts.merge,
contacts.duplicates, history.models); none of them writes a row by itself. Each page shows only
what the staff user reaches (orgs.admin.StaffScope) and acts as their membership there."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from contacts import duplicates
from contacts.admin.base import (
    CappedCountPaginator,
    FastListMixin,
    acting_membership,
    as_staff,
    by_org,
    error_text,
    parse_ids,
    shown,
)
from contacts.contact_fields import WRITABLE_FIELDS
from contacts.merge import MAX_FROM, MERGED_FIELDS, merge, restore_into
from contacts.models import Contact, TrashedContact, attach_tags_and_custom
from contacts.normalize import ContactNormalizer
from contacts.services import duplicate_email_conflict
from contacts.trash import move_to_trash, restore_many
from contacts.trash import purge as trash_purge
from crm.db_security import as_org, rls_bypass
from crm.errors import DomainError
from history.models import ContactChange
from orgs.admin import OrgFilter, staff_scope

HISTORY_PAGE = 50
RECENT_HISTORY = 5  # entries in the change form's history panel
DUPLICATES_PAGE = 20
MERGE_CHOICES = {f.name: f.label for f in WRITABLE_FIELDS if f.name in MERGED_FIELDS}


def history_rows(changes) -> list[dict]:
    """History entries with their user and each field's before → after, as the pages show them."""
    changes = list(changes)
    users = get_user_model().objects.in_bulk({c.user_id for c in changes if c.user_id})
    return [
        {
            "change": change,
            "user": users.get(change.user_id),
            "fields": [(field, shown(pair[0]), shown(pair[1])) for field, pair in change.changes.items()],
        }
        for change in changes
    ]


def recent_history(contact: Contact) -> list[dict]:
    """The contact's latest changes, for the panel on its change form."""
    changes = ContactChange.objects.filter(org_id=contact.org_id, contact_id=contact.pk).order_by("-id")
    return history_rows(changes[:RECENT_HISTORY])


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
        scope = staff_scope(request)
        rows = scope.filter(TrashedContact.objects.select_related("org", "deleted_by"))
        rows = rows.order_by("-deleted_at", "-contact_id")
        org, q = request.GET.get("org", ""), request.GET.get("q", "").strip()[:200]
        if parse_ids([org]):
            rows = rows.filter(org_id=int(org))
        if q:
            rows = rows.filter(Q(name__icontains=q) | Q(email__icontains=q))
        page = CappedCountPaginator(rows, FastListMixin.list_per_page).get_page(request.GET.get("p"))
        expiry = dt.timedelta(days=settings.TRASH_DAYS)
        entries = [(entry, entry.deleted_at + expiry) for entry in page]
        orgs = scope.orgs().only("id", "name").order_by("id")[: OrgFilter.limit]
        context = self.page_context(request, "Trash", page=page, entries=entries, orgs=orgs, org=org, q=q)
        return TemplateResponse(request, "admin/contacts/contact/trash.html", context)

    def _restore(self, request, ids: list[int]) -> None:
        """contacts.trash.restore_many per org; those whose email a live contact took stay, named."""
        entries = self._trashed(request, ids).values_list("org_id", "contact_id", "email")
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
        entries = self._trashed(request, ids).values_list("org_id", "contact_id", "email")
        for org_id, contact_id, email in entries:
            existing = duplicate_email_conflict(org_id, email, None).extra.get("existing_id") if email else None
            if existing is None:
                messages.warning(request, f"Contact #{contact_id}: no live contact has its email; restore it instead.")
                continue
            try:
                _, merge_id = restore_into(acting_membership(request, org_id), contact_id, existing)
            except DomainError as exc:
                messages.error(request, f"Contact #{contact_id} stays in the trash: {error_text(exc)}")
            else:
                link = reverse("admin:contacts_contact_change", args=[existing])
                messages.success(
                    request,
                    format_html("Contact #{} restored into <a href='{}'>#{}</a>: merge #{}.", contact_id, link,
                                existing, merge_id),
                )  # fmt: skip

    @staticmethod
    def _trashed(request, ids: list[int]):
        """The trashed contacts of `ids` the staff user reaches."""
        return staff_scope(request).filter(TrashedContact.objects.filter(contact_id__in=ids))

    def _purge_confirmation(self, request, ids: list[int]):
        entries = self._trashed(request, ids).select_related("org").order_by("-deleted_at")
        context = self.page_context(request, "Purge from the trash", entries=entries)
        return TemplateResponse(request, "admin/contacts/contact/trash_purge.html", context)

    def _purge(self, request, ids: list[int]) -> None:
        """contacts.trash.purge, each one for good (its history keeps a `purged` entry); as the API,
        for owners and admins of the contact's org."""
        purged, refused = 0, set()
        for org_id, contact_id in self._trashed(request, ids).values_list("org_id", "contact_id"):
            membership = acting_membership(request, org_id)
            if not membership.is_admin:
                refused.add(org_id)
                continue
            trash_purge(membership, contact_id)
            purged += 1
        messages.success(request, f"Purged {purged:,} contacts for good.")
        if refused:
            messages.error(request, "Only owners and admins of an organization purge its trash: the others stay.")

    # --- history ---

    def history_view(self, request, object_id, extra_context=None):
        """Every change to the contact (history.models, all sources), newest first, HISTORY_PAGE at a time;
        also for a contact in the trash. Replaces Django's LogEntry history (admin edits only)."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        contact_id = parse_ids([object_id])[:1]
        scope = staff_scope(request)
        contact = scope.filter(Contact.objects.filter(pk__in=contact_id)).first()
        entry = None if contact or not contact_id else self._trashed(request, contact_id).first()
        if contact is None and entry is None:
            raise Http404("No contact with this id, alive or in the trash.")
        org_id = contact.org_id if contact else entry.org_id
        changes = ContactChange.objects.filter(org_id=org_id, contact_id=contact_id[0]).order_by("-id")
        before = request.GET.get("before", "")
        if before.isdigit() and len(before) <= 18:
            changes = changes.filter(id__lt=int(before))
        page = list(changes[: HISTORY_PAGE + 1])
        more = page[HISTORY_PAGE - 1].pk if len(page) > HISTORY_PAGE else None
        rows = history_rows(page[:HISTORY_PAGE])
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
        visible = staff_scope(request).filter(Contact.objects.filter(pk__in=ids)).select_related("org")
        contacts = attach_tags_and_custom(list(visible.order_by("pk")))
        changelist = reverse("admin:contacts_contact_changelist")
        problem = self._merge_problem(ids, contacts)
        if problem:
            messages.error(request, problem)
            return HttpResponseRedirect(changelist)
        membership = acting_membership(request, contacts[0].org_id)
        normalizer = ContactNormalizer.for_org(contacts[0].org, None if as_staff(membership) else membership)
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
        scope = staff_scope(request)
        org = scope.orgs().filter(pk__in=parse_ids([request.GET.get("org", "")])).first()
        if org is None and not request.GET.get("org"):
            org = scope.single_org()
        page, groups = None, []
        if org is not None:
            try:
                # The finder's SQL function is the app role's and reads the org claim: run it as a
                # request of the org would (as_org), then back to the admin's bypass role.
                with rls_bypass(), as_org(org.id):
                    page = duplicates.find(
                        acting_membership(request, org.id), DUPLICATES_PAGE, request.GET.get("cursor")
                    )
            except DomainError as exc:
                messages.error(request, error_text(exc))
            else:
                groups = [
                    {"group": g, "contacts": [page.contacts[i] for i in g.ids if i in page.contacts],
                     "ids": ",".join(map(str, g.ids))}
                    for g in page.groups
                ]  # fmt: skip
        orgs = scope.orgs().only("id", "name").order_by("id")[: OrgFilter.limit]
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
            duplicates.dismiss(acting_membership(request, org_id[0]), ids)
        except DomainError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(
                request, f"Contacts {', '.join(f'#{i}' for i in ids)} are no longer offered as duplicates."
            )
        return HttpResponseRedirect(f"{reverse('admin:contacts_contact_duplicates')}?org={org_id[0]}")
