"""The contacts admin's forms. The contact form edits custom values with one typed editor per field
(customization.forms), grouped by folder; everything it collects is validated by ContactNormalizer,
as the API and import validate, and its errors land on the field they are about."""

from __future__ import annotations

from collections.abc import Mapping

from django import forms
from django.conf import settings
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils.html import format_html

from contacts.admin.base import as_staff, person
from contacts.contact_fields import FIELDS_BY_NAME, WRITABLE_FIELDS
from contacts.importing.options import DEDUPE_CHOICES, ON_DUPLICATE_CHOICES, split_tags
from contacts.models import Contact
from contacts.normalize import ContactNormalizer
from customization.forms import editor_field, submitted_value, yes_no_field
from customization.models import CustomField, CustomFieldFolder
from orgs.models import Organization

CUSTOM_FIELD = "custom__"  # the form name of a custom value: custom__<key>
SET_BELOW = ("name", "assigned_to")


def custom_name(key: str) -> str:
    return CUSTOM_FIELD + key


class AssigneeSelect(AutocompleteSelect):
    """Select2 over the members of the contact's organization (ContactAdmin.assignees_view), not
    over every user of the site."""

    def __init__(self, field, admin_site, org_id: int | None = None):
        super().__init__(field, admin_site)
        self.org_id = org_id

    def get_url(self):
        url = reverse("admin:contacts_contact_assignees")
        return f"{url}?org={self.org_id}" if self.org_id else url


class ContactAdminForm(forms.ModelForm):
    tags = forms.CharField(
        required=False,
        help_text="Comma- or semicolon-separated. New names join the catalog.",
        widget=forms.TextInput(attrs={"size": 80}),
    )
    # Set by `form_for_org`: whose custom fields the form edits, and whom the normalizer acts as.
    custom_org: Organization | None = None
    definitions: dict[str, CustomField] = {}
    scope = None

    class Meta:
        model = Contact
        fields = ["org", *(spec.name for spec in WRITABLE_FIELDS if spec.column)]
        help_texts = {"name": "Display name. Leave first/last name unchanged to have it split into them."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["tags"] = ", ".join(self.instance.tags)
        if "org" in self.fields:
            self.fields["org"].label = "Organization"
        for field in self.fields.values():
            # The form carries the values it was opened with, so "changed" means changed by this
            # staff user, not by another writer since: only those are written.
            field.show_hidden_initial = True
        self.normalized: dict = {}
        self.custom_fields: Mapping = {}
        self.membership = None

    def clean_tags(self):
        return split_tags(self.cleaned_data.get("tags") or "")

    def clean(self):
        cleaned = super().clean()
        org = cleaned.get("org") or (self.instance.org if self.instance.org_id else None)
        if org is None or self.errors:
            return cleaned
        membership = self.scope.membership(org.pk) if self.scope is not None else None
        if self.scope is not None and membership is None:
            self.add_error("org", "Not one of your organizations.")
            return cleaned
        self.membership = None if membership is None or as_staff(membership) else membership
        existing = self.instance if self.instance.pk else None
        data = self._contact_data(cleaned, existing)
        custom = self._custom_patch(org)
        if custom:
            data["custom"] = custom
        normalizer = ContactNormalizer.for_org(org, self.membership)
        self.custom_fields = normalizer.custom_fields
        values, errors = normalizer.clean(data, existing=existing)
        for error in errors:
            self._add_domain_error(error)
        if not errors and values.get("email_key") and self._email_taken(org, values["email_key"]):
            return cleaned
        if not errors:
            self.normalized = values
            for spec in WRITABLE_FIELDS:  # the form shows the normalized values (the assignee stays a user)
                if spec.column and spec.type != "user" and spec.column in values:
                    cleaned[spec.name] = values[spec.column]
        return cleaned

    def _contact_data(self, cleaned: dict, existing) -> dict:
        """The built-in fields as the API takes them: all of a new contact; of an existing one only
        those changed here (a write changes only what it names, so a concurrent one is kept)."""
        changed = set(self.changed_data)
        specs = [s for s in WRITABLE_FIELDS if s.name not in SET_BELOW and (existing is None or s.name in changed)]
        data = {spec.name: cleaned.get(spec.name) for spec in specs}
        names_changed = {"first_name", "last_name"} & changed
        if existing is None or ("name" in changed and not names_changed):
            data["name"] = cleaned.get("name") or ""
        if existing is None and cleaned.get("name") and not (cleaned.get("first_name") or cleaned.get("last_name")):
            data.pop("first_name", None), data.pop("last_name", None)  # a name alone is split into first/last
        if existing is None or "assigned_to" in changed:
            assignee = cleaned.get("assigned_to")
            data["assigned_to"] = assignee.pk if assignee is not None else None
        return data

    def _custom_patch(self, org: Organization) -> dict:
        """The custom values changed in the editors, by key (None clears one)."""
        changed = {key: d for key, d in self.definitions.items() if custom_name(key) in self.changed_data}
        if changed and self.custom_org is not None and self.custom_org.pk != org.pk:
            self.add_error("org", f"The custom fields below are {self.custom_org}'s: open {org}'s form for its own.")
            return {}
        return {key: submitted_value(d, self.cleaned_data.get(custom_name(key))) for key, d in changed.items()}

    def _add_domain_error(self, error) -> None:
        attr = error.attr or ""
        if attr.startswith("custom."):
            name = custom_name(attr.split(".")[1])
            self.add_error(name if name in self.fields else None, error.detail)
            return
        field = attr.split(".")[0]
        message = f"{attr}: {error.detail}" if "." in attr else error.detail
        self.add_error(field if field in self.fields else None, message)

    def _email_taken(self, org: Organization, email_key: str) -> bool:
        """Another contact of the org has this email: the error links to it when the staff user may see it."""
        clash = Contact.objects.for_org(org.pk).filter(email_key=email_key).exclude(pk=self.instance.pk).first()
        if clash is None:
            return False
        visible = self.scope is None or self.scope.filter(Contact.objects.filter(pk=clash.pk)).exists()
        if visible:
            url = reverse("admin:contacts_contact_change", args=[clash.pk])
            message = format_html(
                'This email belongs to <a href="{}">{}</a> (#{}) already: an email is unique in an organization.',
                url, clash, clash.pk,
            )  # fmt: skip
        else:
            message = "Another contact of this organization has this email."
        self.add_error("email", message)
        return True


def form_for_org(base: type[ContactAdminForm], org: Organization | None, contact: Contact | None, scope):
    """`base` with an editor per custom field of `org` (the contact's values as their initial)."""
    definitions = CustomField.objects.for_org(org.pk).order_by("position", "id") if org else []
    current = contact.custom if contact is not None and contact.pk else {}
    tz = org.timezone if org else "UTC"
    attrs = {custom_name(d.key): editor_field(d, current.get(d.key), tz) for d in definitions}
    attrs |= {"custom_org": org, "definitions": {d.key: d for d in definitions}, "scope": scope}
    return type(base.__name__, (base,), attrs)


def custom_fieldsets(org: Organization | None) -> list[tuple[str, dict]]:
    """The org's custom fields as fieldsets, one per folder (in folder order), unfiled ones last."""
    if org is None:
        return []
    folders = {f.pk: f for f in CustomFieldFolder.objects.for_org(org.pk).order_by("position", "id")}
    grouped: dict[int | None, list[str]] = {pk: [] for pk in folders}
    for definition in CustomField.objects.for_org(org.pk).order_by("position", "id"):
        folder = definition.folder_id if definition.folder_id in folders else None
        grouped.setdefault(folder, []).append(custom_name(definition.key))
    sets = [(folders[pk].name, names) for pk, names in grouped.items() if pk is not None and names]
    if grouped.get(None):
        sets.append(("Other custom fields" if sets else "Custom fields", grouped[None]))
    return [(title, {"fields": names, "classes": ["custom-folder"]}) for title, names in sets]


class BulkChangeForm(forms.Form):
    """One bulk action (contacts.bulk) on the chosen contacts of one org."""

    OPERATIONS = [
        ("add_tags", "Add tags"),
        ("remove_tags", "Remove tags"),
        ("assign_to", "Assign to"),
        ("set", "Set a field"),
        ("clear", "Clear a field"),
        ("trash", "Move to the trash"),
    ]
    USES = {"add_tags": "tags", "remove_tags": "tags", "assign_to": "assignee", "set": "field value", "clear": "field"}
    operation = forms.ChoiceField(choices=OPERATIONS)
    tags = forms.CharField(required=False, help_text="Add or remove tags: names, comma-separated.")
    assignee = forms.ModelChoiceField(queryset=None, required=False, help_text="Assign to: empty unassigns.")
    field = forms.ChoiceField(
        required=False,
        help_text="Set or clear: a built-in field or a custom one. To set it, “Show its editor” (or choosing "
        "it, with JavaScript) gives the value its field's own editor.",
    )
    value = forms.CharField(required=False, help_text="Set: the value, as the API takes it (yes/no, a date…).")

    def __init__(self, org: Organization, *args, operation: str | None = None, chosen: str | None = None, **kwargs):
        """`chosen`: the field the form was last sent with; "set" edits its value with its own editor."""
        super().__init__(*args, **kwargs)
        members = get_user_model().objects.filter(memberships__org=org).order_by("email")
        self.fields["assignee"].queryset = members
        self.fields["assignee"].label_from_instance = person
        builtin = [(spec.name, spec.label) for spec in WRITABLE_FIELDS if spec.name != "tags"]
        definitions = {f"custom.{d.key}": d for d in CustomField.objects.for_org(org.pk).order_by("position", "id")}
        self.fields["field"].choices = [("", "—"), *builtin, *((name, d.name) for name, d in definitions.items())]
        label = dict(self.fields["field"].choices).get(chosen, "")
        editor = _value_editor(definitions.get(chosen), chosen, label, org.timezone)
        if editor is not None:
            self.fields["value"] = editor
        if operation is not None:  # one action of the list: only its inputs
            self.fields["operation"].initial = operation
            self.fields["operation"].widget = forms.HiddenInput()
            kept = self.USES.get(operation, "").split()
            for name in ("tags", "assignee", "field", "value"):
                if name not in kept:
                    del self.fields[name]

    def clean(self):
        data = super().clean()
        operation = data.get("operation")
        if operation in ("add_tags", "remove_tags") and not split_tags(data.get("tags") or ""):
            self.add_error("tags" if "tags" in self.fields else None, "Name at least one tag.")
        if operation in ("set", "clear") and not data.get("field"):
            self.add_error("field" if "field" in self.fields else None, "Choose a field.")
        return data

    def action(self) -> dict:
        """The body's `action`, as `POST /contacts/bulk` takes it."""
        data = self.cleaned_data
        operation = data["operation"]
        if operation in ("add_tags", "remove_tags"):
            return {operation: split_tags(data["tags"])}
        if operation == "assign_to":
            return {"assign_to": data["assignee"].pk if data.get("assignee") else None}
        if operation == "set":
            return {"set": {data["field"]: data.get("value", "")}}
        if operation == "trash":
            return {"trash": True}
        return {"clear": [data["field"]]}


def _value_editor(definition: CustomField | None, chosen: str | None, label: str, tz: str) -> forms.Field | None:
    """The value's editor for the chosen field: a custom field's own (customization.forms), yes/no
    for a built-in boolean (`dnc`); None keeps the text box. The bulk job validates what it collects,
    as the API does."""
    builtin = FIELDS_BY_NAME.get(chosen or "")
    if definition is not None:
        editor = editor_field(definition, None, tz)
    elif builtin is not None and builtin.type == "boolean":
        editor = yes_no_field()
    else:
        return None
    editor.label = "Value"
    editor.help_text = f"Set: the new value of {label}."
    return editor


class ImportForm(forms.Form):
    org = forms.ModelChoiceField(queryset=Organization.objects.none(), label="Organization")
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

    def __init__(self, orgs, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["org"].queryset = orgs.order_by("id")

    def clean(self):
        # The size cap depends on the choice of a background job, a later field than the file.
        cleaned = super().clean()
        upload, run_async = cleaned.get("file"), cleaned.get("run_async")
        limit = settings.ASYNC_IMPORT_MAX_BODY_BYTES if run_async else settings.IMPORT_MAX_BODY_BYTES
        if upload is not None and upload.size > limit:
            hint = "" if run_async else " Choose “Run in the background” for a bigger file."
            self.add_error("file", f"The file is larger than {limit:,} bytes.{hint}")
        return cleaned
