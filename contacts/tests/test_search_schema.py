"""The search and saved-view bodies are parsed by contacts.search (precise `attr` paths) and published
by the serializers of contacts/api/search_schema.py: both read crm/limits.py, and here their shapes
must agree, so the schema cannot promise a key the parser refuses or hide one it takes."""

import pytest

from contacts.api import search_schema
from contacts.search import query, saved_views
from crm import limits


@pytest.mark.parametrize(
    ("serializer", "keys"),
    [
        (search_schema.SearchSerializer, query.BODY_KEYS),
        (search_schema.QuerySerializer, query.QUERY_KEYS),
        (search_schema.GroupSerializer, query.GROUP_KEYS),
        (search_schema.ConditionSerializer, query.CONDITION_KEYS),
        (search_schema.SortSerializer, query.SORT_KEYS),
        (search_schema.SavedViewSerializer, saved_views.VIEW_KEYS),
    ],
    ids=lambda item: getattr(item, "__name__", ""),
)
def test_each_schema_object_has_exactly_the_keys_the_parser_takes(serializer, keys):
    assert set(serializer().fields) == set(keys)


def test_the_schema_publishes_the_parsers_caps():
    body = search_schema.SearchSerializer().fields
    assert body["limit"].max_value == limits.MAX_LIMIT and body["limit"].default == limits.DEFAULT_LIMIT
    assert body["offset"].max_value == limits.MAX_OFFSET
    assert list(body["count"].choices) == list(limits.COUNT_MODES)
    assert body["q"].max_length == limits.MAX_Q_LENGTH
    assert body["cursor"].max_length == limits.MAX_CURSOR_LENGTH
    assert body["sort"].max_length == limits.MAX_SORT_KEYS
    assert search_schema.QuerySerializer().fields["groups"].max_length == limits.MAX_GROUPS
    assert search_schema.GroupSerializer().fields["conditions"].max_length == limits.MAX_CONDITIONS
    assert list(search_schema.SortSerializer().fields["direction"].choices) == list(limits.SORT_DIRECTIONS)


def test_the_import_options_schema_is_the_parsers_options():
    import dataclasses

    from contacts.api.import_views import ImportOptionsSerializer
    from contacts.importing.options import BOOLEAN_OPTIONS, OPTION_NAMES, ImportOptions

    published = ImportOptionsSerializer().fields
    defaults = {f.name: f.default for f in dataclasses.fields(ImportOptions)}
    attribute = {**{name: name for name in OPTION_NAMES}, **BOOLEAN_OPTIONS}  # `async` is `run_async`
    assert set(published) == set(OPTION_NAMES) and set(attribute.values()) == set(defaults)
    assert all(published[name].default == defaults[attribute[name]] for name in OPTION_NAMES if name != "tags")
