"""What an import answers: counts and per-row errors (the API's and the command's JSON)."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_REPORTED_ERRORS = 1000


@dataclass
class RowError:
    row: int
    field: str | None
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "message": self.message}


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

    def fail(self, row: int, errors: list[tuple[str | None, str]]) -> None:
        self.failed += 1
        self._note(row, errors)

    def conflict(self, row: int, attr: str, message: str) -> None:
        """A row that found a contact it cannot be (another person): reported, nothing changed."""
        self.conflicts += 1
        self._note(row, [(attr, message)])

    def _note(self, row: int, errors: list[tuple[str | None, str]]) -> None:
        for attr, message in errors:
            if len(self.errors) < MAX_REPORTED_ERRORS:
                self.errors.append(RowError(row, attr, message))
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
        return body
