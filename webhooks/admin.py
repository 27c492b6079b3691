"""Django admin for webhooks and their delivery log (superusers: every org; other staff: theirs).

A webhook's URL and `active` can be changed here, through webhooks.services as the API does (the
URL checked as a target, `active` resuming it where it stopped); its secret is never shown, and
webhooks are created through the API, whose answer alone carries the secret. Deliveries are
read-only, with a "retry now" action.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from changes import feed
from crm.errors import Conflict, InvalidInput
from orgs.admin import OrgFilter, OrgScopedAdminMixin, ReadOnlyAdminMixin, staff_scope
from webhooks import services, targets
from webhooks.models import Delivery, Webhook

RECENT_DELIVERIES = 10
LOG_HEADER = mark_safe(
    "<tr><th>id</th><th>status</th><th>attempts</th><th>code</th><th>created</th><th>error</th></tr>"
)


class WebhookForm(forms.ModelForm):
    class Meta:
        model = Webhook
        fields = ["url", "active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        if "url" in self.changed_data:
            try:
                targets.validate_url(url)
            except InvalidInput as exc:
                raise ValidationError(exc.errors[0].detail) from None
        return url


class OwnersAndAdminsOnly(OrgScopedAdminMixin):
    """Staff reach the webhooks of the orgs where they are an owner or admin (a superuser: every
    org's), as in the API; the querysets' `for_member` keeps a member's none."""

    catalog_writes = True

    def has_module_permission(self, request):
        return request.user.is_superuser or staff_scope(request).may_write(catalog=True)

    def has_view_permission(self, request, obj=None):
        org_id = getattr(obj, "org_id", None)
        return super().has_view_permission(request, obj) and staff_scope(request).may_write(org_id, catalog=True)


@admin.register(Webhook)
class WebhookAdmin(OwnersAndAdminsOnly, admin.ModelAdmin):
    form = WebhookForm
    list_display = ["id", "org", "url", "active", "disabled_reason", "failing_since", "created_at"]
    list_filter = ["active", OrgFilter]
    list_select_related = ["org"]
    search_fields = ["url"]
    ordering = ["-id"]
    show_full_result_count = False
    readonly_fields = [
        "org", "events", "view_id", "disabled_reason", "failing_since", "failures", "next_attempt_at", "cursor",
        "created_by", "created_at", "updated_at", "recent_deliveries",
    ]  # fmt: skip
    fields = ["url", "active", *readonly_fields]

    def has_add_permission(self, request):
        return False  # through the API: its answer is the only place the secret is shown

    @admin.display(description="feed position delivered through")
    def cursor(self, webhook: Webhook) -> str:
        return feed.encode_cursor(webhook.org_id, webhook.position)

    @admin.display(description="recent deliveries")
    def recent_deliveries(self, webhook: Webhook) -> str:
        rows = Delivery.objects.filter(org_id=webhook.org_id, webhook_id=webhook.pk).order_by("-id")
        recent = list(rows[:RECENT_DELIVERIES])
        if not recent:
            return "—"
        link = reverse("admin:webhooks_delivery_changelist") + f"?webhook__id__exact={webhook.pk}"
        lines = format_html_join(
            "",
            "<tr><td>#{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((d.pk, d.status, d.attempts, d.response_code or "—", d.created_at, d.error or "") for d in recent),
        )
        return format_html('<table>{}{}</table><a href="{}">All deliveries</a>', LOG_HEADER, lines, link)

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in form.changed_data}
        if values:
            services.update(Webhook.objects.get(pk=obj.pk), values)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, OwnersAndAdminsOnly, admin.ModelAdmin):
    list_display = [
        "id", "org", "webhook_id", "status", "entry_count", "attempts", "response_code", "latency_ms", "error",
        "next_attempt_at", "created_at",
    ]  # fmt: skip
    list_filter = ["status", OrgFilter]
    list_select_related = ["org"]
    ordering = ["-id"]
    show_full_result_count = False
    actions = ["retry_selected"]
    exclude = ["body"]

    def has_retry_permission(self, request) -> bool:
        """Staff with Django's change permission on webhooks, or an owner or admin of an org (the
        queryset keeps the deliveries they reach)."""
        return request.user.has_perm("webhooks.change_webhook") or staff_scope(request).may_write(catalog=True)

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "webhook__id__exact" or super().lookup_allowed(lookup, value, request)

    @admin.action(description="Retry selected deliveries now", permissions=["retry"])
    def retry_selected(self, request, queryset):
        for delivery in queryset.select_related("webhook").order_by("pk"):
            try:
                services.retry(delivery.webhook, delivery)
            except Conflict as exc:
                messages.error(request, f"Delivery #{delivery.pk}: {exc.detail}")
            else:
                messages.success(request, f"Delivery #{delivery.pk} is queued again.")
