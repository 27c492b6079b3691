"""Domain errors: plain exceptions that services, the search compiler and the import engine raise.

They know nothing of HTTP. `crm.api.exceptions.problem_exception_handler` turns each into an
RFC 9457 problem (the status per class is there); the admin and management commands show their
`detail` and `errors` as they are.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with the input: `attr` is the dotted path of the offending value
    (`query.groups.0.conditions.1.op`), or None when it is about the whole input."""

    attr: str | None
    code: str
    detail: str

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, "attr": self.attr}


def unknown_key(key, attr: str = "") -> FieldError:
    """An object's key that is not one of its documented keys (shortened, made renderable)."""
    shown = str(key)[:50].encode("utf-8", "backslashreplace").decode("utf-8")
    return FieldError(f"{attr}.{shown}" if attr else shown, "unknown_key", f"Unexpected key {shown!r}.")


class DomainError(Exception):
    code = "invalid"
    default_detail = "The request cannot be carried out."

    def __init__(self, detail: str | None = None, attr: str | None = None, code: str | None = None, **extra):
        self.detail = detail or self.default_detail
        self.attr = attr
        self.code = code or self.code
        self.extra = extra  # merged into the problem body (e.g. `existing_id`)
        super().__init__(self.detail)

    @property
    def errors(self) -> list[FieldError]:
        return [FieldError(self.attr, self.code, self.detail)]


class InvalidInput(DomainError):
    """The input is understood but its content is invalid: flat, path-addressed errors."""

    code = "invalid_input"
    default_detail = "The request contains invalid values."

    def __init__(self, errors: list[FieldError], detail: str | None = None):
        self.field_errors = errors
        super().__init__(detail or (errors[0].detail if len(errors) == 1 else self.default_detail))

    @property
    def errors(self) -> list[FieldError]:
        return self.field_errors


class NotFound(DomainError):
    """What the request names does not exist, or not for the caller (the same answer)."""

    code = "not_found"
    default_detail = "Not found."


class Conflict(DomainError):
    """A uniqueness or concurrency conflict with what is stored."""

    code = "conflict"
    default_detail = "A conflicting record exists."


class PreconditionFailed(DomainError):
    """The caller's `If-Match` names a version that is no longer current."""

    code = "precondition_failed"
    default_detail = "If-Match does not match the current version; reload and retry."


class Gone(DomainError):
    """What the request names existed but is no longer kept (an expired feed cursor)."""

    code = "gone"
    default_detail = "No longer available."


class TooLarge(DomainError):
    """The input is over a documented size limit (rows, bytes)."""

    code = "payload_too_large"
    default_detail = "The request is too large."
