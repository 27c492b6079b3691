"""Request body parsers: DRF's, with the limits a client must not get past.

JSON: a body nested deeper than the decoder can follow, NaN or Infinity are a 400; a lone UTF-16
surrogate written as an escape (`"\\udcff"`, which no UTF-8 text and no PostgreSQL column can
hold) is a 422 naming where it is. Both before any view sees the data. Multipart: more files or fields
than Django's limits is a 413.
"""

from __future__ import annotations

import json
import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from rest_framework import parsers

from crm.api.exceptions import MalformedRequest
from crm.errors import FieldError, InvalidInput, TooLarge

# A `\uD800`–`\uDFFF` escape: only then can a decoded string hold a surrogate (the decoder joins a
# proper high + low pair into one character, so what is left after decoding is a lone one).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            text = raw.decode(settings.DEFAULT_CHARSET)
        except UnicodeDecodeError as exc:
            raise MalformedRequest(f"The body is not valid UTF-8 (byte {exc.start}).", code="malformed_request")
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except RecursionError:
            raise MalformedRequest("The JSON body is nested too deeply.", code="nested_too_deeply")
        except ValueError as exc:
            raise MalformedRequest(f"JSON parse error - {exc}", code="malformed_request")
        if _SURROGATE_ESCAPE.search(text):
            _reject_lone_surrogates(data)
        return data


def _reject_lone_surrogates(data) -> None:
    """Walk the decoded body without recursion; the first string (key or value) holding a lone
    surrogate is the error, with its dotted path."""
    stack: list[tuple[object, str | None]] = [(data, None)]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                item_path = f"{path}.{key}" if path else str(key)
                if _SURROGATE.search(key):
                    _raise_surrogate(path)
                stack.append((item, item_path))
        elif isinstance(value, list):
            stack.extend((item, f"{path}.{index}" if path else str(index)) for index, item in enumerate(value))
        elif isinstance(value, str) and _SURROGATE.search(value):
            _raise_surrogate(path)


def _raise_surrogate(path: str | None):
    detail = "An unpaired UTF-16 surrogate escape (\\ud800-\\udfff) is not a character."
    raise InvalidInput([FieldError(path, "invalid_unicode", detail)])


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except TooManyFilesSent:
            raise TooLarge(f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files per request.")
        except TooManyFieldsSent:
            raise TooLarge(f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} form fields per request.")
        except RequestDataTooBig:
            raise TooLarge()
