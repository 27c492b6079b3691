"""The regex fast path of normalize_email must agree with email-validator wherever it answers."""

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from customization.field_types import FieldValueError, normalize_email

SAMPLES = [
    "ada@example.com",
    "Ada.Lovelace@Example.COM",
    "a+tag@sub.domain.co.uk",
    "x_y%z@a-b.io",
    "1@2.com",
    "a..b@example.com",
    "a@b.c",
    ".a@example.com",
    "a.@example.com",
    "a@-x.com",
    "a@x-.com",
    "a@x..com",
    "a@localhost",
    "a@foo.local",
    "a@foo.invalid",
    "a@x.onion",
    "a@home.arpa",
    "a@onion.com",
    "a@mylocal.com",
    "bob@demo.test",
    "a@123.456",
    "a@xn--bcher-kva.ch",
    "very.common@example.org",
    "a@" + "x" * 64 + ".com",
    "user@[127.0.0.1]",
    '"quoted"@example.com',
]


def slow(text):
    try:
        return validate_email(text, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError:
        return None


def fast(text):
    try:
        return normalize_email(text)
    except FieldValueError:
        return None


@pytest.mark.parametrize("text", SAMPLES)
def test_fast_path_agrees_with_email_validator(text):
    assert fast(text) == slow(text)


ATOM = st.text(alphabet="abcXYZ019_%+-.", min_size=1, max_size=12)
LABEL = st.text(alphabet="abcXYZ019-", min_size=1, max_size=10)
TLDS = ["com", "IO", "test", "c", "local", "ONION", "arpa", "localhost", "invalid"]  # and special-use ones


@settings(max_examples=300, deadline=None)
@given(local=ATOM, labels=st.lists(LABEL, min_size=1, max_size=3), tld=st.sampled_from(TLDS))
def test_fast_path_agrees_on_generated_addresses(local, labels, tld):
    text = f"{local}@{'.'.join(labels)}.{tld}"
    assert fast(text) == slow(text)
