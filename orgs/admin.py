from django.contrib import admin

from orgs.models import Membership, Organization


class OrgFilter(admin.SimpleListFilter):
    """Organizations by id, from their own (small) table, not a DISTINCT over the filtered one
    (every tenant model's admin uses it)."""

    title = "organization"
    parameter_name = "org"
    limit = 200

    def lookups(self, request, model_admin):
        return [(str(org.id), str(org)) for org in Organization.objects.only("id", "name").order_by("id")[: self.limit]]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(org_id=int(value)) if value and value.isdigit() else queryset


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "default_region", "timezone", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["id", "org", "user", "role", "data_scope", "created_at"]
    list_filter = ["role", "data_scope"]
    search_fields = ["user__email", "org__name"]
    raw_id_fields = ["org", "user"]
    list_select_related = ["org", "user"]
