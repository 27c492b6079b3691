from django.contrib import admin

from orgs.models import Membership, Organization


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
