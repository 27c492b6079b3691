"""Contact normalization: the one place every write path (API create/update, custom-value
PUT, import, admin) turns client input into stored values.

`ContactNormalizer(org, membership).clean(data, existing)` returns the model values to set
and the errors found, each with its dotted `attr`. Everything it needs about the org
(region, time zone, custom-field definitions, member ids) is loaded once per normalizer, so
importing 100,000 rows costs no per-row queries; and only when first needed, so a PATCH of a
company reads neither the field catalog nor the members.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from contacts.contact_fields import FIELDS_BY_NAME, TEXT_FIELDS, WRITABLE_FIELDS, ContactField
from crm.errors import FieldError
from customization.catalog import FieldCatalog, normalize_tag
from customization.field_types import BooleanType, FieldValueError, normalize_email, normalize_phone
from customization.models import CustomField
from customization.text import fold, fold_unaccented
from orgs.models import Membership, Organization

MAX_TAGS_PER_CONTACT = 100
TEXT_FIELD_NAMES = tuple(f.name for f in TEXT_FIELDS)
# What `search_text` is computed from.
SEARCHED_FIELDS = frozenset({"name", "email", "phone", "company"})


# What may follow a comma in a name without making it "Last, First".
NAME_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "v", "phd", "md", "esq", "dds", "mba", "cpa"})


def last_first(name: str) -> tuple[str, str] | None:
    """'Hopper, Grace' → ('Grace', 'Hopper'), as address books and spreadsheets write names; None
    for any other form ('John Smith, Jr.' is no "Last, First")."""
    before, comma, after = (part.strip() for part in name.partition(","))
    if not (comma and before and after) or "," in after or after.replace(".", "").lower() in NAME_SUFFIXES:
        return None
    return after, before


def split_name(name: str) -> tuple[str, str]:
    """'Mary Ann Smith' → ('Mary Ann', 'Smith'); 'Hopper, Grace' → ('Grace', 'Hopper');
    a single word is a first name."""
    reordered = last_first(name)
    if reordered is not None:
        return reordered
    parts = name.split()
    if len(parts) <= 1:
        return name, ""
    return " ".join(parts[:-1]), parts[-1]


def display_name(first: str, last: str) -> str:
    return " ".join(part for part in (first, last) if part)


def build_search_text(name: str, email: str | None, phone: str | None, company: str) -> str:
    """What `q` matches: name, email and company case-folded without accents, and the phone's digits."""
    digits = (phone or "").lstrip("+")
    return fold_unaccented(" ".join(part for part in (name, email or "", company) if part)) + (
        f" {digits}" if digits else ""
    )


def build_folded(values: dict) -> dict[str, str]:
    """`Contact.folded`: the case folding of each non-empty built-in text field, what text filters compare."""
    return {key: fold(values[key]) for key in TEXT_FIELD_NAMES if values.get(key)}


def email_key(email: str | None) -> str | None:
    return fold(email) if email else None


class ContactNormalizer:
    def __init__(
        self,
        org: Organization,
        membership: Membership | None = None,  # None: a staff/system write (admin, management command)
        custom_fields: Mapping[str, CustomField] | None = None,  # None: the org's, read when first needed
    ):
        self.org, self.membership = org, membership
        self.custom_fields = custom_fields if custom_fields is not None else FieldCatalog(org.id)

    @classmethod
    def for_member(cls, membership: Membership) -> ContactNormalizer:
        return cls(membership.org, membership)

    @classmethod
    def for_org(cls, org: Organization, membership: Membership | None = None) -> ContactNormalizer:
        return cls(org, membership)

    @cached_property
    def member_ids(self) -> set[int]:
        return set(Membership.objects.filter(org_id=self.org.id).values_list("user_id", flat=True))

    # --- single values -------------------------------------------------------------

    def clean_custom_value(self, key: str, value: Any) -> Any:
        """The canonical JSON form of one custom value (None clears). Raises KeyError/FieldValueError."""
        definition = self.custom_fields[key]
        if value is None:
            return None
        return definition.field_type.canonicalize(
            value, options=definition.options, region=self.org.default_region, tz=self.org.timezone
        )

    # --- a whole contact -----------------------------------------------------------

    def clean(self, data: dict, existing=None, derive: bool = True) -> tuple[dict, list[FieldError]]:
        """Validate `data` (only the keys given: PATCH semantics) into model values, plus `tags` (the
        whole set) and `custom` (a patch by key, None clearing) for contacts.services to store.

        With `existing` (read FOR UPDATE by the caller), derived values account for it.
        `derive=False` leaves them to the caller (import derives once per merged contact).
        """
        values: dict[str, Any] = {}
        errors: list[FieldError] = []
        for spec, cleaner in self.cleaners:
            if spec.name in data:
                value = cleaner(spec, data[spec.name], errors)
                if value is not INVALID:
                    values[spec.column or spec.name] = value
        if "custom" in data:  # a patch: the keys given, None clearing one
            patch = self._clean_custom(data["custom"], errors)
            if patch is not None:
                values["custom"] = patch
        if "assigned_to" not in data and existing is None and self.membership and self.membership.sees_only_assigned:
            values["assigned_to_id"] = self.membership.user_id
        if derive and not errors:
            self.derive(values, data, existing)
        return values, errors

    @cached_property
    def cleaners(self) -> tuple:
        """Each writable built-in field with the cleaner of its type: `(field, raw, errors) -> value`,
        or INVALID after appending to `errors`. Resolved once: import cleans a million rows."""
        by_type = {
            "text": self._clean_text,
            "textarea": self._clean_text,
            "email": self._clean_email_or_phone,
            "phone": self._clean_email_or_phone,
            "boolean": self._clean_boolean,
            "tags": self._clean_tags,
            "user": self._clean_assignee,
        }
        return tuple((spec, by_type[spec.type]) for spec in WRITABLE_FIELDS)

    @staticmethod
    def _clean_text(spec: ContactField, raw, errors):
        if raw is None:
            return ""
        if not isinstance(raw, str):
            return _invalid(errors, spec.name, "wrong_type", "Expected a string.")
        text = raw if spec.type == "textarea" else raw.strip()  # long text keeps its layout
        if len(text) > spec.max_length:
            return _invalid(errors, spec.name, "too_long", f"At most {spec.max_length} characters.")
        if "\x00" in text:
            return _invalid(errors, spec.name, "invalid", "NUL characters are not allowed.")
        return text

    def _clean_email_or_phone(self, spec: ContactField, raw, errors):
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        if not isinstance(raw, str):
            return _invalid(errors, spec.name, "wrong_type", "Expected a string.")
        try:
            if spec.type == "email":
                return normalize_email(raw.strip())
            return normalize_phone(raw.strip(), self.org.default_region)
        except FieldValueError as exc:
            return _invalid(errors, spec.name, exc.code, str(exc))

    @staticmethod
    def _clean_boolean(spec: ContactField, raw, errors):
        try:
            return False if raw is None else BooleanType().canonicalize(raw) or False
        except FieldValueError as exc:
            return _invalid(errors, spec.name, exc.code, str(exc))

    @staticmethod
    def _clean_tags(spec: ContactField, raw, errors):
        if raw is None:
            return []
        if not isinstance(raw, list):
            return _invalid(errors, "tags", "wrong_type", "Expected a list of tag names.")
        tags: list[str] = []
        for index, item in enumerate(raw):
            try:
                name = normalize_tag(item)
            except ValueError as exc:
                errors.append(FieldError(f"tags.{index}", "invalid_tag", str(exc)))
                continue
            if name not in tags:
                tags.append(name)
        if len(tags) > MAX_TAGS_PER_CONTACT:
            return _invalid(errors, "tags", "too_many", f"At most {MAX_TAGS_PER_CONTACT} tags per contact.")
        return tags

    def _clean_custom(self, raw, errors) -> dict | None:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            errors.append(FieldError("custom", "wrong_type", "Expected an object of custom field values."))
            return None
        patch: dict[str, Any] = {}
        failed = False
        for key, value in raw.items():
            attr = f"custom.{key}"
            if key not in self.custom_fields:
                errors.append(FieldError(attr, "unknown_custom_field", f"No custom field with key {key!r}."))
                failed = True
                continue
            try:
                patch[key] = self.clean_custom_value(key, value)
            except FieldValueError as exc:
                errors.append(FieldError(attr, exc.code, str(exc)))
                failed = True
        return None if failed else patch

    def _clean_assignee(self, spec: ContactField, raw, errors):
        if isinstance(raw, str) and raw.strip().isdigit():
            raw = int(raw.strip())
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int)):
            return _invalid(errors, spec.name, "wrong_type", "Expected a user id or null.")
        if raw is not None and raw not in self.member_ids:
            return _invalid(errors, spec.name, "not_a_member", "That user is not a member of this organization.")
        if self.membership is not None and self.membership.sees_only_assigned and raw != self.membership.user_id:
            return _invalid(
                errors,
                spec.name,
                "scope_forbidden",
                "Members limited to their assigned contacts can only assign to themselves.",
            )
        return raw

    def derive(self, values: dict, data: dict, existing) -> None:
        """Keep name ⇄ first/last, email_key, folded and search_text consistent with what was written."""

        def current(key, default=""):
            if key in values:
                return values[key]
            return getattr(existing, key, default) if existing is not None else default

        if "name" in values and "first_name" not in data and "last_name" not in data:
            values["first_name"], values["last_name"] = split_name(values["name"])
            if last_first(values["name"]) is not None:  # shown as "Grace Hopper", as first/last would give it
                values["name"] = display_name(values["first_name"], values["last_name"])
            values["first_name"] = values["first_name"][: FIELDS_BY_NAME["first_name"].max_length]
            values["last_name"] = values["last_name"][: FIELDS_BY_NAME["last_name"].max_length]
        elif ("first_name" in values or "last_name" in values) and "name" not in values:
            values["name"] = display_name(current("first_name"), current("last_name"))
        if "email" in values:
            values["email_key"] = email_key(values["email"])
        if existing is None or values.keys() & set(TEXT_FIELD_NAMES):
            values["folded"] = build_folded({key: current(key) for key in TEXT_FIELD_NAMES})
        if existing is None or SEARCHED_FIELDS & values.keys():
            values["search_text"] = build_search_text(
                current("name"), current("email", None), current("phone", None), current("company")
            )


INVALID = object()  # a cleaner's answer when it appended an error instead


def _invalid(errors: list[FieldError], attr: str, code: str, detail: str):
    errors.append(FieldError(attr, code, detail))
    return INVALID
