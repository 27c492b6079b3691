"""`GET /contacts` query parameters (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from contacts.contact_fields import CONTACT_FIELDS
from contacts.models import Contact, Opportunity, SmartListView
from contacts.search import SearchCompiler
from contacts.search.compiler import SortPlan, builtin_sort
from contacts.search.free_text import QText
from contacts.search.operators import side_of, tag_exists
from contacts.search.query import SortKey
from crm.errors import FieldError, InvalidInput
from crm.limits import MAX_Q_LENGTH
from customization.catalog import normalize_tag
from customization.models import Tag

SORTABLE_FIELDS = tuple(spec.name for spec in CONTACT_FIELDS if spec.sortable)


@extend_schema_field(OpenApiTypes.STR)
class TagFilter(django_filters.MultipleChoiceFilter):
    """Repeatable `tag=`; names are free-form (normalized like stored tags)."""


@extend_schema_field(OpenApiTypes.BOOL)
class BooleanChoiceFilter(django_filters.TypedChoiceFilter):
    """`true` / `false` only (anything else is a 422), published as a plain boolean."""


@extend_schema_field(OpenApiTypes.INT)
class IntegerFilter(django_filters.NumberFilter):
    """An id: an integer (`3.5` is a 422, not user 3), published as `integer` so generated clients type it."""

    field_class = forms.IntegerField


@extend_schema_field(OpenApiTypes.INT)
class SavedViewIdFilter(django_filters.CharFilter):
    """A saved view id, published as `integer`; the text is checked in `filter_view` (422 when no such view)."""


class ContactOrdering(django_filters.OrderingFilter):
    """`ordering=` parsed, validated and published by django-filter; sorted as a smart-list search
    sorts (contacts.search), so a cursor walk over a column with empty values loses no row."""

    def filter(self, qs, value):
        if not value:
            return qs
        keys = [SortKey(name.lstrip("-"), "desc" if name.startswith("-") else "asc", "ordering") for name in value]
        return self.parent.sort_by(builtin_sort(keys), qs)


class ContactFilterSet(django_filters.FilterSet):
    q = django_filters.CharFilter(
        method="filter_q",
        max_length=MAX_Q_LENGTH,
        help_text="Substring across name, email, phone (by digits) and company.",
    )
    tag = TagFilter(method="filter_tags", help_text="Repeatable; the contact must carry every tag given.")
    assigned_to = IntegerFilter(field_name="assigned_to_id", help_text="User id.")
    dnc = BooleanChoiceFilter(
        choices=[("true", "true"), ("false", "false")], coerce=lambda value: value == "true", help_text="true / false."
    )
    view = SavedViewIdFilter(
        method="filter_view",
        help_text="Id of a saved view (GET /contacts/views): applies its query, q and sort (an explicit "
        "`ordering` wins). Unknown id, or a view naming a since-deleted field: 422 with attr `view...`.",
    )
    ordering = ContactOrdering(
        fields=SORTABLE_FIELDS,
        field_labels={spec.name: spec.label for spec in CONTACT_FIELDS},
        help_text="Sort fields, comma-separated, `-` for descending (default `-created_at`); empty values last.",
    )

    class Meta:
        model = Contact
        fields = ["q", "tag", "assigned_to", "dnc"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Tag names are free-form: accept any value, normalize in filter_tags.
        self.filters["tag"].field.valid_value = lambda value: isinstance(value, str)

    def filter_q(self, queryset, name, value):
        text = QText.of(value)
        self.request.contacts_q_index = text.index  # read by ContactPagination for its counts and ids
        self.request.contacts_q_count = text.count if text.patterns else None  # and this, for `q` alone
        return queryset.filter(text.rows)

    def filter_view(self, queryset, name, value):
        membership = self.request.membership
        text = value.strip()
        view = None
        if text.isascii() and text.isdigit() and len(text) <= 18:
            view = SmartListView.objects.for_member(membership).filter(pk=int(text)).first()
        if view is None:
            raise InvalidInput([FieldError("view", "does_not_exist", "No saved view with that id.")])
        plan = SearchCompiler.for_member(membership).compile_view(view)
        return self.sort_by(plan.sort, plan.filter(queryset))

    def sort_by(self, sort: SortPlan, queryset):
        """Sort the list, and remember the order for its paging (read by ContactPagination)."""
        self.request.contacts_order_by = list(sort.order_by)
        return sort.apply(queryset)

    def filter_tags(self, queryset, name, values):
        names = set()
        for value in values:
            if value.strip():
                try:
                    names.add(normalize_tag(value))
                except ValueError:
                    return queryset.none()  # not a possible tag name: on no contact
        if not names:
            return queryset
        ids = dict(Tag.objects.for_org(self.request.membership.org_id).filter(name__in=names).values_list("name", "id"))
        if len(ids) < len(names):
            return queryset.none()  # a name not in the catalog is on no contact
        for tag_id in sorted(ids.values()):  # constant ids: the planner knows how common each tag is
            condition = tag_exists(tag_id=tag_id)
            queryset = queryset.filter(condition)
        if len(ids) == 1:  # read by ContactPagination: one tag can be paged from its own rows
            self.request.contacts_side = side_of(condition)
        return queryset

    @property
    def qs(self):
        if not self.is_valid():
            errors = [
                FieldError(attr, str(e.code or "invalid"), str(e.message % (e.params or {})))
                for attr, errs in self.errors.as_data().items()
                for e in errs
            ]
            raise InvalidInput(errors)
        queryset = super().qs
        if getattr(self.request, "contacts_order_by", None) is None:  # no sort given: the default
            queryset = self.sort_by(SortPlan(), queryset)
        return queryset


class OpportunityFilterSet(django_filters.FilterSet):
    # By id, not a model choice: an id the caller cannot see (or that does not exist) lists nothing.
    contact = IntegerFilter(field_name="contact_id", help_text="Contact id.")

    class Meta:
        model = Opportunity
        fields = ["contact", "status", "pipeline", "stage"]
