"""Editors of custom values, one per type of the field-type registry (customization.field_types):
a date picker, a select of the options, checkboxes, a number box, yes/no, text.

An editor only collects a value in the shape the API takes it (`"2026-03-15"`, `["Email"]`,
`"42.5"`, `"true"`); validating and canonicalizing it stays the registry's (`FieldType.canonicalize`,
called by the contact normalizer), so a value is refused with the same message in the admin as in
the API. A type without an editor of its own gets a text box.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms

from customization.field_types import MAX_TEXT
from customization.models import CustomField

STALE = "{} (no longer an option)"


def _options(definition: CustomField, current: Any) -> list[tuple[str, str]]:
    """The field's options, plus any stored value that is no longer one (kept until changed)."""
    options = [(option, option) for option in definition.options or []]
    stored = current if isinstance(current, list) else [current] if current not in (None, "") else []
    known = {option for option, _ in options}
    return options + [(value, STALE.format(value)) for value in stored if value not in known]


def _local(canonical: str | None, tz: str) -> str:
    """A stored instant (`…Z`) as the org's wall-clock time, for a datetime-local input."""
    if not canonical:
        return ""
    try:
        moment = dt.datetime.fromisoformat(canonical.replace("Z", "+00:00"))
        local = moment.astimezone(zoneinfo.ZoneInfo(tz))
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return canonical
    return local.strftime("%Y-%m-%dT%H:%M:%S" if local.second else "%Y-%m-%dT%H:%M")


class RegistryChoiceField(forms.ChoiceField):
    """A select whose value the registry checks (its message names the options), not the form."""

    def valid_value(self, value) -> bool:
        return True


class RegistryMultipleChoiceField(forms.MultipleChoiceField):
    def valid_value(self, value) -> bool:
        return True


def _text(widget: type[forms.Widget] = forms.TextInput, **attrs) -> Callable:
    return lambda definition, current, tz: forms.CharField(widget=widget(attrs=attrs), strip=False)


def _select(definition: CustomField, current: Any, tz: str) -> forms.Field:
    return RegistryChoiceField(choices=[("", "—"), *_options(definition, current)])


def _multi_select(definition: CustomField, current: Any, tz: str) -> forms.Field:
    return RegistryMultipleChoiceField(choices=_options(definition, current), widget=forms.CheckboxSelectMultiple)


def yes_no_field() -> forms.Field:
    """A boolean's editor: yes, no, or — (no value), sent as the API takes them."""
    return RegistryChoiceField(choices=[("", "—"), ("true", "Yes"), ("false", "No")], required=False)


def _boolean(definition: CustomField, current: Any, tz: str) -> forms.Field:
    return yes_no_field()


def _datetime(definition: CustomField, current: Any, tz: str) -> forms.Field:
    field = forms.CharField(widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}))
    field.help_text = f"In the organization's time zone ({tz})."
    return field


def _show_boolean(value: Any, tz: str) -> str:
    return "" if value is None else "true" if value else "false"


@dataclass(frozen=True)
class Editor:
    build: Callable[[CustomField, Any, str], forms.Field]  # (definition, current value, org time zone)
    show: Callable[[Any, str], Any] = lambda value, tz: "" if value is None else value  # stored → widget

    def field(self, definition: CustomField, current: Any, tz: str) -> forms.Field:
        field = self.build(definition, current, tz)
        field.required = False
        field.label = definition.name
        field.initial = self.show(current, tz)
        return field


EDITORS: dict[str, Editor] = {
    "text": Editor(_text(maxlength=MAX_TEXT, size=60)),
    "textarea": Editor(_text(forms.Textarea, rows=3, cols=60)),
    "number": Editor(_text(forms.NumberInput, step="any"), lambda value, tz: "" if value is None else str(value)),
    "date": Editor(_text(forms.DateInput, type="date")),
    "datetime": Editor(_datetime, _local),
    "boolean": Editor(_boolean, _show_boolean),
    "single_select": Editor(_select),
    "multi_select": Editor(_multi_select, lambda value, tz: list(value or [])),
    "email": Editor(_text(forms.EmailInput, size=40)),
    "phone": Editor(_text(type="tel", size=20)),
    "url": Editor(_text(forms.URLInput, size=60)),
}
DEFAULT_EDITOR = Editor(_text(size=60))


def editor_field(definition: CustomField, current: Any, tz: str = "UTC") -> forms.Field:
    """The form field editing `definition`'s value `current` (canonical JSON form, or None)."""
    return EDITORS.get(definition.data_type, DEFAULT_EDITOR).field(definition, current, tz)


def submitted_value(definition: CustomField, cleaned: Any) -> Any:
    """What the editor collected, as the API takes it (None or empty clears the value)."""
    if cleaned in ("", [], None):
        return None
    return cleaned
