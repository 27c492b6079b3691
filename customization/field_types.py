"""The field-type registry: the one place that knows, per custom-field data type, how a value
is validated and canonicalized into JSONB and which filter kind (hence operators) it has.

Adding a type is one class here plus `register()`. The smart-list compiler, the contact
serializer, import and `GET /contacts/fields` all read this registry.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import phonenumbers
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from customization.text import fold


class FieldValueError(ValueError):
    """A value does not fit its type. `code` is the machine-readable reason."""

    def __init__(self, message: str, code: str = "invalid_value"):
        super().__init__(message)
        self.code = code


# Filter kinds group types that share operators and semantics (DESIGN §4 table).
class FilterKind:
    TEXT = "text"
    TAGS = "tags"
    BOOLEAN = "boolean"
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    USER = "user"
    VIEW = "view"  # the `view` pseudo-field: membership of the org's saved views


# Dates and datetimes share operators (a date-only value on a datetime means that whole day).
_TEMPORAL_OPERATORS = (
    "eq",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "within_last",
    "more_than_ago",
    "within_next",
    "more_than_ahead",
    "today",
    "is_empty",
    "is_not_empty",
)

OPERATORS_BY_KIND: dict[str, tuple[str, ...]] = {
    FilterKind.TEXT: (
        "eq",
        "neq",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "in",
        "not_in",
        "is_empty",
        "is_not_empty",
    ),
    FilterKind.TAGS: ("contains", "not_contains", "contains_any", "contains_all", "is_empty", "is_not_empty"),
    FilterKind.BOOLEAN: ("eq", "is_empty", "is_not_empty"),
    FilterKind.NUMBER: ("eq", "neq", "gt", "gte", "lt", "lte", "between", "is_empty", "is_not_empty"),
    FilterKind.DATE: _TEMPORAL_OPERATORS,
    FilterKind.DATETIME: _TEMPORAL_OPERATORS,
    FilterKind.USER: ("eq", "neq", "in", "not_in", "is_empty", "is_not_empty"),
    FilterKind.VIEW: ("in", "not_in"),
}

MAX_TEXT = 1000
MAX_TEXTAREA = 10000


@dataclass(frozen=True)
class StoredItem:
    """One stored item of a custom value: its canonical JSON form and the typed, comparable form
    filters and sorts use (folded text, a number, a date or an instant). A value is one item,
    a multi_select one per option."""

    value: Any
    text: str | None = None  # customization.text.fold of the value
    number: float | None = None
    day: dt.date | None = None
    moment: dt.datetime | None = None


class FieldType:
    """Base class. `canonicalize(value, options=..., region=..., tz=...)` returns the canonical JSON
    form of a value (`contact.custom[key]`), or None for "clear"; raises FieldValueError.
    `stored_items(canonical)` is how that form is stored and compared."""

    name: ClassVar[str]
    filter_kind: ClassVar[str]
    has_options: ClassVar[bool] = False
    json_schema: ClassVar[dict] = {}
    example: ClassVar[Any] = None

    def canonicalize(self, value: Any, *, options: list[str] | None = None, region: str = "US", tz: str = "UTC") -> Any:
        raise NotImplementedError

    @property
    def operators(self) -> tuple[str, ...]:
        return OPERATORS_BY_KIND[self.filter_kind]

    def stored_items(self, canonical: Any) -> list[StoredItem]:
        """Text types compare by their folded text; the other kinds override this."""
        return [StoredItem(canonical, text=fold(canonical))]


def _require_str(value: Any, what: str = "a string") -> str:
    if not isinstance(value, str):
        raise FieldValueError(f"Expected {what}.", "wrong_type")
    if "\x00" in value:  # PostgreSQL cannot store NUL in text or jsonb
        raise FieldValueError("NUL characters are not allowed.", "invalid")
    return value.strip()


class TextType(FieldType):
    name = "text"
    filter_kind = FilterKind.TEXT
    max_length = MAX_TEXT
    json_schema = {"type": "string"}
    example = "Enterprise"

    def canonicalize(self, value, **ctx):
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
            value = str(value)  # a number written into a text field is still text
        text = _require_str(value)
        if len(text) > self.max_length:
            raise FieldValueError(f"At most {self.max_length} characters.", "too_long")
        return text or None


class TextareaType(TextType):
    name = "textarea"
    max_length = MAX_TEXTAREA
    example = "Met at the Berlin fair; wants a demo in Q3."


class NumberType(FieldType):
    name = "number"
    filter_kind = FilterKind.NUMBER
    json_schema = {"type": "number"}
    example = 42.5

    def canonicalize(self, value, **ctx):
        if isinstance(value, bool):
            raise FieldValueError("Expected a number.", "wrong_type")
        if isinstance(value, str):
            text = value.strip().replace(",", "") if re.fullmatch(r"\s*-?[\d,]+(\.\d+)?\s*", value) else value.strip()
            if text == "":
                return None
            try:
                number = Decimal(text)
            except InvalidOperation:
                raise FieldValueError(f"{value!r} is not a number.", "wrong_type")
            if not number.is_finite():
                raise FieldValueError("Numbers must be finite.", "wrong_type")
            value = int(number) if number == number.to_integral_value() and abs(number) < 2**53 else float(number)
        if isinstance(value, Decimal):
            value = float(value)
        if not isinstance(value, (int, float)):
            raise FieldValueError("Expected a number.", "wrong_type")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise FieldValueError("Numbers must be finite.", "wrong_type")
            if value.is_integer() and abs(value) < 2**53:
                value = int(value)
        if abs(value) >= 1e15:
            raise FieldValueError("Numbers must be smaller than 1e15 in magnitude.", "out_of_range")
        return value

    def stored_items(self, canonical):
        return [StoredItem(canonical, number=float(canonical))]


def parse_date(value: Any) -> dt.date:
    text = _require_str(value, "a date as YYYY-MM-DD")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise FieldValueError(f"{value!r} is not a date in the form YYYY-MM-DD.", "wrong_type")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise FieldValueError(f"{value!r} is not a valid calendar date.", "invalid_date")


def parse_datetime(value: Any, tz: str = "UTC") -> dt.datetime:
    """An ISO 8601 datetime; one without an offset is read in `tz`. Returned in UTC."""
    text = _require_str(value, "an ISO 8601 datetime")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?", text):
        raise FieldValueError(f"{value!r} is not an ISO 8601 datetime.", "wrong_type")
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FieldValueError(f"{value!r} is not a valid datetime.", "invalid_datetime")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zoneinfo.ZoneInfo(tz))
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise FieldValueError(f"{value!r} is outside the supported range of datetimes.", "out_of_range")


# What format_datetime writes.
_STORED_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def format_datetime(value: dt.datetime) -> str:
    """Canonical UTC form, fixed width, so stored values also sort chronologically as text.
    (isoformat pads years before 1000 to four digits; strftime("%Y") does not.)"""
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class DateType(FieldType):
    name = "date"
    filter_kind = FilterKind.DATE
    json_schema = {"type": "string", "format": "date"}
    example = "2026-03-15"

    def canonicalize(self, value, **ctx):
        if value == "":
            return None
        return parse_date(value).isoformat()

    def stored_items(self, canonical):
        return [StoredItem(canonical, day=dt.date.fromisoformat(canonical))]


class DatetimeType(FieldType):
    name = "datetime"
    filter_kind = FilterKind.DATETIME
    json_schema = {"type": "string", "format": "date-time"}
    example = "2026-03-15T09:30:00.000000Z"

    def canonicalize(self, value, *, tz="UTC", **ctx):
        if value == "":
            return None
        if isinstance(value, str) and _STORED_DATETIME.fullmatch(value):
            try:  # already the stored form (a re-imported export): it only needs to be a real instant
                dt.datetime.fromisoformat(value[:-1])
                return value
            except ValueError:
                pass  # the full path words the error
        return format_datetime(parse_datetime(value, tz))

    def stored_items(self, canonical):
        return [StoredItem(canonical, moment=dt.datetime.fromisoformat(canonical.replace("Z", "+00:00")))]


class BooleanType(FieldType):
    name = "boolean"
    filter_kind = FilterKind.BOOLEAN
    json_schema = {"type": "boolean"}
    example = True
    TRUE = {"true", "yes", "y", "1", "on"}
    FALSE = {"false", "no", "n", "0", "off"}

    def canonicalize(self, value, **ctx):
        if isinstance(value, bool):
            return value
        if isinstance(value, str):  # CSV import writes booleans as words
            word = value.strip().lower()
            if word == "":
                return None
            if word in self.TRUE:
                return True
            if word in self.FALSE:
                return False
        raise FieldValueError(
            "Expected true or false (JSON booleans), or as text one of: true/false, yes/no, y/n, 1/0, on/off.",
            "wrong_type",
        )

    def stored_items(self, canonical):
        return [StoredItem(canonical, number=1.0 if canonical else 0.0)]


def match_option(text: str, options: list[str]) -> str | None:
    """The option `text` names, ignoring case (customization.text.fold)."""
    wanted = fold(text.strip())
    for option in options:
        if fold(option) == wanted:
            return option
    return None


def _match_option(value: Any, options: list[str]) -> str:
    text = _require_str(value)
    option = match_option(text, options)
    if option is not None:
        return option
    raise FieldValueError(f"{text!r} is not one of the options: {', '.join(options)}.", "invalid_choice")


class SingleSelectType(FieldType):
    name = "single_select"
    filter_kind = FilterKind.TEXT
    has_options = True
    json_schema = {"type": "string"}
    example = "Gold"

    def canonicalize(self, value, *, options=None, **ctx):
        if value == "":
            return None
        return _match_option(value, options or [])


class MultiSelectType(FieldType):
    name = "multi_select"
    filter_kind = FilterKind.TAGS
    has_options = True
    json_schema = {"type": "array", "items": {"type": "string"}}
    example = ["Email", "SMS"]

    def canonicalize(self, value, *, options=None, **ctx):
        if isinstance(value, str):  # CSV: "a;b" or "a,b"
            value = [part for part in re.split(r"[;,]", value) if part.strip()]
        if not isinstance(value, list):
            raise FieldValueError("Expected a list of options.", "wrong_type")
        chosen: list[str] = []
        for item in value:
            option = _match_option(item, options or [])
            if option not in chosen:
                chosen.append(option)
        return chosen or None

    def stored_items(self, canonical):
        return [StoredItem(option, text=fold(option)) for option in canonical]


class EmailType(FieldType):
    name = "email"
    filter_kind = FilterKind.TEXT
    json_schema = {"type": "string", "format": "email"}
    example = "billing@acme.test"

    def canonicalize(self, value, **ctx):
        text = _require_str(value)
        return normalize_email(text) if text else None


class PhoneType(FieldType):
    name = "phone"
    filter_kind = FilterKind.TEXT
    json_schema = {"type": "string"}
    example = "+14155552671"

    def canonicalize(self, value, *, region="US", **ctx):
        text = _require_str(value)
        return normalize_phone(text, region) if text else None


class UrlType(FieldType):
    name = "url"
    filter_kind = FilterKind.TEXT
    json_schema = {"type": "string", "format": "uri"}
    example = "https://acme.test/pricing"
    _validator = URLValidator(schemes=["http", "https"])

    def canonicalize(self, value, **ctx):
        text = _require_str(value)
        if not text:
            return None
        if len(text) > 2000:
            raise FieldValueError("URLs are at most 2000 characters.", "too_long")
        plain = _PLAIN_URL.fullmatch(text)
        if plain and len(plain["host"]) <= 253:
            return text  # a subset of what URLValidator admits (property-tested), ~20x cheaper
        try:
            self._validator(text)
        except DjangoValidationError:
            raise FieldValueError(f"{text!r} is not an http(s) URL.", "invalid_url")
        return text


# Plain http(s) URLs with an ASCII host name: every match is a URL Django's URLValidator admits
# (its host, port and path patterns, narrowed), so imports skip its costlier checks for them.
_URL_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_URL = re.compile(
    rf"https?://(?P<host>(?:{_URL_LABEL}\.)+[a-z]{{2,63}})(?::[0-9]{{1,5}})?(?:[/?#][^\s]*)?",
    re.IGNORECASE,
)


# `.test` is admitted below (test_environment=True), so the fast path admits it too.
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES) - {"test"}
_PLAIN_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*)@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


def normalize_email(text: str) -> str:
    """Validated, with the domain lowercased (email-validator's normalization); compared case-folded.

    Plain ASCII addresses (the vast majority) take a regex fast path that gives exactly
    email-validator's answer for them; anything else (IDNA, quoted parts, special-use
    domains) goes through email-validator itself. Import normalizes 100,000 rows at a time.
    """
    if len(text) > 254:
        raise FieldValueError("Email addresses are at most 254 characters.", "too_long")
    plain = _PLAIN_EMAIL.fullmatch(text)
    if plain and len(plain["local"]) <= 64 and not _is_special_use(plain["domain"].lower()):
        return f"{plain['local']}@{plain['domain'].lower()}"
    try:
        # test_environment=True admits the reserved `.test` TLD (RFC 2606), used by sandboxes and demos.
        return validate_email(text, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise FieldValueError(f"Enter a valid email address ({exc}).", "invalid_email")


_SPECIAL_USE_SUFFIXES = tuple("." + name for name in _SPECIAL_USE)


def _is_special_use(domain: str) -> bool:
    """The domain is, or is under, a special-use name. "--" in a label (positions 3–4 are
    reserved for IDNA) is left to email-validator too."""
    return "--" in domain or domain in _SPECIAL_USE or domain.endswith(_SPECIAL_USE_SUFFIXES)


_PHONE_FORMATTING = re.compile(r"[\s().\-]")


def normalize_phone(text: str, region: str = "US") -> str:
    """E.164, parsed with the org's default region for numbers written without +country."""
    if len(text) > 40:
        raise FieldValueError("Phone numbers are at most 40 characters.", "too_long")
    fast = _fast_phone(text, region)
    if fast is not None:
        return fast
    try:
        number = phonenumbers.parse(text, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        raise FieldValueError(f"{text!r} is not a phone number.", "invalid_phone")
    # Typed without a country code or a trunk 0: the digits alone, read in the org's region.
    bare = (
        number.country_code_source == phonenumbers.CountryCodeSource.FROM_DEFAULT_COUNTRY
        and not _PHONE_FORMATTING.sub("", text).startswith("0")
    )
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        elsewhere = _valid_elsewhere(text, region) if bare else []
        hint = f"; it is a valid {elsewhere[0][0]} number: write it {elsewhere[0][1]}" if elsewhere else ""
        raise FieldValueError(f"{text!r} is not a valid phone number for region {region}{hint}.", "invalid_phone")
    if bare and _trunk_prefix_written(region):
        _refuse_if_ambiguous(text, number, region)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Where a number typed without a country code may come from, whatever the org's region.
COMMON_PHONE_REGIONS = ("US", "CA", "GB", "IE", "AU", "NZ", "IN", "DE", "FR", "ES", "IT", "NL")


def _refuse_if_ambiguous(text: str, number, region: str) -> None:
    """A number of a region whose numbers are written with a trunk 0 (GB's 020 …), typed without it
    and without +: if its digits are also a valid number of another common region (a US 207 … in a GB
    org), guessing would file a foreign number under the org's country; ask for the country code."""
    elsewhere = _valid_elsewhere(text, region)
    if elsewhere:
        here = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        readings = " or ".join(f"{written} ({other})" for other, written in [(region, here), *elsewhere])
        raise FieldValueError(
            f"{text!r} has no country code and no leading 0: it could be {readings}. "
            "Write it with + and the country code.",
            "ambiguous_phone",
        )


def _valid_elsewhere(text: str, region: str) -> list[tuple[str, str]]:
    """(region, international form) for each common region other than `region`'s calling code whose
    local numbers are written as bare digits (the US's (415) …, Italy's 02 …) where `text` is valid."""
    own_code = phonenumbers.country_code_for_region(region)
    found, codes = [], {own_code}
    for other in COMMON_PHONE_REGIONS:
        code = phonenumbers.country_code_for_region(other)
        if code in codes or _trunk_prefix_written(other):  # there, local numbers are written 0…: not these
            continue
        try:
            number = phonenumbers.parse(text, other)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            codes.add(code)
            found.append((other, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)))
    return found


@functools.cache
def _trunk_prefix_written(region: str) -> bool:
    """The region's national numbers are written with a trunk prefix `0` (GB 020 …, FR 01 …), unlike
    the US's (415) …: a number there typed with neither + nor 0 is not in the local form."""
    prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix
    example = phonenumbers.example_number(region)
    if prefix != "0" or example is None:
        return False
    written = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    return _PHONE_FORMATTING.sub("", written).startswith(prefix)


def _fast_phone(text: str, region: str) -> str | None:
    """The common case without phonenumbers' full parse: `+<cc><number>` of the org's own country,
    or a plain national number of it without a national prefix, valid for the org's region.

    Answers only when that region is the main one of its calling code, where
    `is_valid_number_for_region` and the full `is_valid_number` agree; otherwise (and for any
    number it does not vouch for) returns None and the full path decides. Import normalizes
    100,000 rows at a time, and the full parse + validation costs ~100 µs a number.
    """
    prefix = _main_calling_code(region)
    if prefix is None:
        return None
    compact = _PHONE_FORMATTING.sub("", text)
    if compact.startswith("+" + prefix):
        national = compact[len(prefix) + 1 :]
    elif compact[:1].isdigit() and not compact.startswith(("0", prefix)) and not _trunk_prefix_written(region):
        national = compact
    else:
        return None
    if not (national.isascii() and national.isdigit()) or national.startswith("0") or not 4 <= len(national) <= 14:
        return None
    patterns = _valid_number_patterns(region, len(national))
    if patterns is not None and all(pattern.fullmatch(national) for pattern in patterns):
        return f"+{prefix}{national}"
    return None


@functools.cache
def _main_calling_code(region: str) -> str | None:
    """The region's calling code, if the region is the main one of that code (else None)."""
    country_code = phonenumbers.country_code_for_region(region)
    if not country_code or phonenumbers.region_code_for_country_code(country_code) != region:
        return None
    return str(country_code)


@functools.cache
def _valid_number_patterns(region: str, length: int) -> tuple[re.Pattern, re.Pattern] | None:
    """`phonenumbers.is_valid_number_for_region` for national numbers of `length` digits, as two
    compiled patterns that must both fullmatch: the region's general description, and any one
    number type's (phonenumbers tries them one by one, each behind the same length check).
    None when no number of that length can be valid."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)

    def admits(desc) -> bool:
        return (
            desc is not None
            and bool(desc.national_number_pattern)
            and (not desc.possible_length or length in desc.possible_length)
        )

    types = [
        desc
        for desc in (
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
            metadata.fixed_line,
            metadata.mobile,
        )
        if admits(desc)
    ]
    if not admits(metadata.general_desc) or not types:
        return None
    general = re.compile(metadata.general_desc.national_number_pattern)
    any_type = re.compile("|".join(f"(?:{desc.national_number_pattern})" for desc in types))
    return general, any_type


FIELD_TYPES: dict[str, FieldType] = {}


def register(field_type: type[FieldType]) -> type[FieldType]:
    FIELD_TYPES[field_type.name] = field_type()
    return field_type


for _type in (
    TextType,
    TextareaType,
    NumberType,
    DateType,
    DatetimeType,
    BooleanType,
    SingleSelectType,
    MultiSelectType,
    EmailType,
    PhoneType,
    UrlType,
):
    register(_type)

DATA_TYPES: tuple[str, ...] = tuple(FIELD_TYPES)


def get_field_type(data_type: str) -> FieldType:
    return FIELD_TYPES[data_type]
