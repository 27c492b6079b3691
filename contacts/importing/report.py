"""What an import answers: counts and per-row errors (the API's and the command's JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_REPORTED_ERRORS = 1000


# Each outcome a row can have, and the counter it adds to.
OUTCOME_COUNTERS = {
    "created": "created",
    "updated": "updated",
    "skipped": "skipped",
    "failed": "failed",
    "conflict": "conflicts",
}


@dataclass
class RowError:
    row: int
    field: str | None
    message: str
    value: object = None  # the input that failed, as given

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "message": self.message, "value": self.value}


def value_at(data: dict | None, attr: str | None):
    """The input at a dotted path of a row (`email`, `custom.plan`, `tags.2`), or None."""
    if not attr or not isinstance(data, dict):
        return None
    value = data
    for part in attr.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


@dataclass
class ImportReport:
    total: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0
    conflicts: int = 0  # rows whose phone found a contact with another email (`dedupe_on=phone`)
    errors: list[RowError] = field(default_factory=list)
    errors_dropped: int = 0  # errors beyond MAX_REPORTED_ERRORS, counted only
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False
    rows: list[dict] | None = None  # each row's outcome, when asked for (`report=rows`)

    def outcome(self, row: int, outcome: str, contact_id: int | None = None, matched_on: str | None = None) -> None:
        counter = OUTCOME_COUNTERS[outcome]
        setattr(self, counter, getattr(self, counter) + 1)
        if self.rows is not None:
            self.rows.append({"row": row, "outcome": outcome, "contact_id": contact_id, "matched_on": matched_on})

    def fail(self, row: int, errors: list[tuple[str | None, str]], data: dict | None = None) -> None:
        """A row not imported; each error names its input in `data` (the row as given)."""
        self.outcome(row, "failed")
        self._note(row, [(attr, message, value_at(data, attr)) for attr, message in errors])

    def conflict(self, row: int, attr: str, message: str, value, contact_id: int | None) -> None:
        """A row that found a contact it cannot be (another person): reported, nothing changed."""
        self.outcome(row, "conflict", contact_id, attr)
        self._note(row, [(attr, message, value)])

    def _note(self, row: int, errors: list[tuple[str | None, str, object]]) -> None:
        for attr, message, value in errors:
            if len(self.errors) < MAX_REPORTED_ERRORS:
                self.errors.append(RowError(row, attr, message, value))
            else:
                self.errors_dropped += 1

    def as_dict(self) -> dict:
        body = {
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "failed": self.failed,
            "conflicts": self.conflicts,
            "errors": [e.as_dict() for e in sorted(self.errors, key=lambda e: e.row)],  # stable: a row's own order
            "dry_run": self.dry_run,
            "ignored_columns": self.ignored_columns,
        }
        if self.errors_dropped:
            body["errors_truncated"] = self.errors_dropped
        if self.rows is not None:
            body["rows"] = sorted(self.rows, key=lambda entry: entry["row"])
        return body
