"""normalize_phone's fast path must give exactly what its full path (phonenumbers' parse and
validation, and the refusal of ambiguous bare numbers) gives."""

from unittest import mock

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from customization.field_types import FieldValueError, normalize_phone


def full(text, region):
    with mock.patch("customization.field_types._fast_phone", return_value=None):
        return ours(text, region)


def ours(text, region):
    try:
        return normalize_phone(text, region)
    except FieldValueError:
        return None


SAMPLES = [
    "+14155552671",
    "(415) 555-2671",
    "415.555.2671",
    "4155552671",
    "14155552671",
    "+1 555 555 1234",
    "+442079460958",
    "020 7946 0958",
    "+33 1 23 45 67 89",
    "12",
    "+1",
    "+1415555267",
    "0049 30 1234567",
    "+14155552671 ext 5",
    "415-555-2671x3",
    "+1 (800) 555-0199",
    "2079460958",
]


@pytest.mark.parametrize("region", ["US", "GB", "CA", "FR", "DE"])
@pytest.mark.parametrize("text", SAMPLES)
def test_fast_path_matches_phonenumbers(text, region):
    assert ours(text, region) == full(text, region)


@settings(max_examples=400, deadline=None)
@given(
    plus=st.booleans(),
    code=st.sampled_from(["1", "44", "33", "49", ""]),
    digits=st.text(alphabet="0123456789", min_size=4, max_size=13),
    sep=st.sampled_from(["", " ", "-", "."]),
    region=st.sampled_from(["US", "GB", "FR", "DE", "CA"]),
)
def test_fast_path_matches_on_generated_numbers(plus, code, digits, sep, region):
    text = ("+" if plus else "") + code + sep + digits[:3] + sep + digits[3:]
    assert ours(text, region) == full(text, region)


REGIONS = ["US", "GB", "FR", "DE", "IN", "BR", "JP", "AU", "ES", "NL"]


@settings(max_examples=3000, deadline=None)
@given(
    region=st.sampled_from(REGIONS),
    first=st.sampled_from("123456789"),
    rest=st.text(alphabet="0123456789", min_size=3, max_size=13),
)
def test_precompiled_validity_is_phonenumbers_validity(region, first, rest):
    """The fast path's precompiled patterns accept exactly the national numbers phonenumbers'
    is_valid_number_for_region accepts (region-plausible digits, so valid ones are drawn too)."""
    from customization.field_types import _main_calling_code, _valid_number_patterns

    national = first + rest
    patterns = _valid_number_patterns(region, len(national))
    ours_valid = patterns is not None and all(p.fullmatch(national) for p in patterns)
    number = phonenumbers.PhoneNumber(country_code=int(_main_calling_code(region)), national_number=int(national))
    assert ours_valid == phonenumbers.is_valid_number_for_region(number, region)


@pytest.mark.parametrize("region", REGIONS)
def test_precompiled_validity_accepts_each_regions_example_numbers(region):
    from customization.field_types import _fast_phone

    for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None:
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            assert _fast_phone(e164, region) == e164  # the fast path itself vouches for it
