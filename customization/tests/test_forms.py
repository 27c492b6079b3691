"""Editors of custom values (customization.forms): one per type of the field-type registry, showing a
stored value as its widget expects it and collecting what the API would take."""

from __future__ import annotations

from django import forms

from customization.field_types import FIELD_TYPES
from customization.forms import EDITORS, editor_field, submitted_value
from customization.models import CustomField


def definition(data_type: str, options=()) -> CustomField:
    return CustomField(key="k", name="The field", data_type=data_type, options=list(options))


def test_every_registered_type_has_an_editor_of_its_own():
    assert set(EDITORS) == set(FIELD_TYPES)


def test_editors_are_optional_and_labelled_by_the_fields_name():
    for data_type in FIELD_TYPES:
        field = editor_field(definition(data_type, ["A"] if FIELD_TYPES[data_type].has_options else []), None)
        assert field.required is False and field.label == "The field", data_type


def test_dates_and_datetimes_get_pickers_shown_in_the_orgs_time_zone():
    date = editor_field(definition("date"), "2026-03-15")
    assert date.widget.input_type == "date" and date.initial == "2026-03-15"
    moment = editor_field(definition("datetime"), "2026-03-15T08:30:00.000000Z", "Europe/Berlin")
    assert moment.widget.input_type == "datetime-local" and moment.initial == "2026-03-15T09:30"
    assert "Europe/Berlin" in moment.help_text


def test_selects_offer_the_options_and_keep_a_stored_value_that_is_no_longer_one():
    single = editor_field(definition("single_select", ["Gold", "Silver"]), "Bronze")
    assert [value for value, _ in single.choices] == ["", "Gold", "Silver", "Bronze"]
    assert dict(single.choices)["Bronze"] == "Bronze (no longer an option)"
    multi = editor_field(definition("multi_select", ["Email", "SMS"]), ["SMS"])
    assert isinstance(multi.widget, forms.CheckboxSelectMultiple) and multi.initial == ["SMS"]
    # The registry, not the form, decides what a select accepts (its message names the options).
    assert single.clean("gold") == "gold" and multi.clean(["Fax"]) == ["Fax"]


def test_numbers_and_booleans_show_what_the_api_takes():
    assert editor_field(definition("number"), 12.5).initial == "12.5"
    boolean = editor_field(definition("boolean"), False)
    assert boolean.initial == "false" and [v for v, _ in boolean.choices] == ["", "true", "false"]


def test_an_empty_editor_clears_the_value():
    assert submitted_value(definition("text"), "") is None
    assert submitted_value(definition("multi_select"), []) is None
    assert submitted_value(definition("number"), "3") == "3"
