"""The table of built-in contact fields (contacts/contact_fields.py) agrees with the model, and every
part of the product that lists built-in fields reads it."""

import pytest

from contacts.admin.forms import ContactAdminForm
from contacts.api.serializers import ContactSerializer
from contacts.contact_fields import CONTACT_FIELDS, TOKEN_FIELDS, WRITABLE_FIELDS
from contacts.importing.columns import COLUMN_SPEC
from contacts.importing.parsing import CONTACT_COLUMNS
from contacts.models import Contact
from contacts.search.fields import BUILTIN_FIELDS, PSEUDO_FIELDS, FieldRegistry
from customization.rendering import render


@pytest.mark.parametrize("spec", [spec for spec in CONTACT_FIELDS if spec.column], ids=lambda spec: spec.name)
def test_each_column_field_matches_the_model(spec):
    model_field = next(f for f in Contact._meta.concrete_fields if f.attname == spec.column)
    assert model_field.null == spec.nullable
    if spec.max_length is not None:
        assert model_field.max_length in (spec.max_length, None)  # TextField: no cap in the database
    assert model_field.editable or not spec.writable or spec.column == "updated_at"


def test_every_reader_lists_the_same_fields():
    names = [spec.name for spec in CONTACT_FIELDS]
    writable = [spec.name for spec in WRITABLE_FIELDS]
    assert list(BUILTIN_FIELDS) == names
    assert [entry["field"] for entry in FieldRegistry().catalog()] == [*names, *PSEUDO_FIELDS]  # `view`: filter only
    assert list(ContactSerializer().fields) == ["id", *names, "custom"]
    assert [name for name, f in ContactSerializer().fields.items() if not f.read_only] == [*writable, "custom"]
    assert list(CONTACT_COLUMNS) == writable
    assert set(ContactAdminForm.base_fields) >= {"org", *writable}
    assert {spec.column for spec in WRITABLE_FIELDS if spec.column} <= set(COLUMN_SPEC)


def test_sortable_and_nullable_reach_the_catalog():
    catalog = {entry["field"]: entry for entry in FieldRegistry().catalog()}
    for spec in CONTACT_FIELDS:
        assert catalog[spec.name]["sortable"] == spec.sortable
        assert catalog[spec.name]["type"] == spec.type


def test_token_fields_render_and_others_stay_unfilled():
    assert set(TOKEN_FIELDS) == {"first_name", "last_name", "name", "email", "phone", "company", "source"}
    result = render("{{contact.company}} {{contact.notes}}", None, {})
    assert result.rendered == " {{contact.notes}}"
    assert result.missing == ["contact.company", "contact.notes"]
