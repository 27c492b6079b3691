"""Fast paths of the url and datetime types must answer exactly as the full checks do."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from customization import field_types
from customization.field_types import DatetimeType, FieldValueError, UrlType, format_datetime, parse_datetime

URL_VALIDATOR = UrlType._validator


def django_admits(text: str) -> bool:
    try:
        URL_VALIDATOR(text)
    except ValidationError:
        return False
    return True


URL_SAMPLES = [
    "https://acme.test/pricing",
    "HTTP://Example.COM:8080/a?b=c#d",
    "https://a.b.co.uk/x y",
    "https://-bad.com/",
    "https://bad-.com/",
    "https://a..com/",
    "https://localhost/",
    "https://127.0.0.1/",
    "ftp://example.com/",
    "https://example.c/",
    "https://example.123/",
    "https://" + "a" * 64 + ".com/",
    "https://" + ".".join(["a" * 63] * 4) + ".com",
    "https://user:pw@example.com/",
    "https://exa_mple.com/",
    "https://example.com./",
]


@pytest.mark.parametrize("text", URL_SAMPLES)
def test_every_url_the_fast_path_admits_django_admits(text):
    plain = field_types._PLAIN_URL.fullmatch(text)
    if plain and len(plain["host"]) <= 253:
        assert django_admits(text)


def test_the_fast_path_answers_for_common_urls():
    assert field_types._PLAIN_URL.fullmatch("https://acme.test/pricing?plan=pro#top")


LABEL = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9-]{0,8}[a-zA-Z0-9]|[a-z0-9]", fullmatch=True)
PATH = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)


@settings(max_examples=500, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    labels=st.lists(LABEL | st.text(alphabet="a-_.9", min_size=1, max_size=4), min_size=1, max_size=4),
    tld=st.sampled_from(["com", "IO", "c", "x1", "test"]),
    port=st.sampled_from(["", ":80", ":99999", ":"]),
    path=st.sampled_from(["", "/", "?", "#"]).flatmap(lambda lead: PATH.map(lambda rest: lead + rest)),
)
def test_the_url_type_agrees_with_urlvalidator(scheme, labels, tld, port, path):
    text = f"{scheme}://{'.'.join(labels)}.{tld}{port}{path}"
    try:
        ours = UrlType().canonicalize(text) is not None
    except FieldValueError:
        ours = False
    stripped = text.strip()
    expected = bool(stripped) and len(stripped) <= 2000 and django_admits(stripped)
    assert ours == expected


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=dt.datetime(1, 1, 1), timezones=st.sampled_from([dt.UTC, None])))
def test_a_stored_datetime_comes_back_as_the_full_path_writes_it(moment):
    stored = format_datetime(moment.replace(tzinfo=dt.UTC))
    assert DatetimeType().canonicalize(stored) == format_datetime(parse_datetime(stored))


@pytest.mark.parametrize(
    "text", ["2026-02-30T10:00:00.000000Z", "2026-01-01T24:00:00.000000Z", "0000-01-01T00:00:00.000000Z"]
)
def test_stored_looking_datetimes_that_are_not_real_take_the_full_path(text):
    try:
        expected = format_datetime(parse_datetime(text))
    except FieldValueError as exc:
        with pytest.raises(FieldValueError, match=str(exc)):
            DatetimeType().canonicalize(text)
    else:
        assert DatetimeType().canonicalize(text) == expected


def test_datetimes_before_the_year_1000_are_stored_with_four_digit_years():
    assert DatetimeType().canonicalize("0999-01-02T03:04:05Z") == "0999-01-02T03:04:05.000000Z"
