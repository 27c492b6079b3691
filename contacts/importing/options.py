"""Import options: one parser for the JSON `options` object and for CSV query parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from crm.errors import FieldError, InvalidInput
from customization.catalog import normalize_tag

DEDUPE_CHOICES = ("email", "phone", "email_or_phone", "none")
ON_DUPLICATE_CHOICES = ("update", "skip")
REPORT_CHOICES = ("summary", "rows")  # `rows`: each row's outcome in the answer
TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off", ""}


@dataclass(frozen=True)
class ImportOptions:
    dry_run: bool = False
    dedupe_on: str = "email_or_phone"
    on_duplicate: str = "update"
    tags: tuple[str, ...] = field(default_factory=tuple)
    report: str = "summary"
    run_async: bool = False  # the option `async`: a job of the task queue (202), not one request

    def as_params(self) -> dict:
        """JSON for a job's params (`from_params` reads it back)."""
        return {"dry_run": self.dry_run, "dedupe_on": self.dedupe_on, "on_duplicate": self.on_duplicate,
                "tags": list(self.tags), "report": self.report, "run_async": self.run_async}  # fmt: skip

    @classmethod
    def from_params(cls, params: dict) -> ImportOptions:
        return cls(**{**params, "tags": tuple(params.get("tags", ()))})

    @property
    def dedupe_email(self) -> bool:
        return self.dedupe_on in ("email", "email_or_phone")

    @property
    def dedupe_phone(self) -> bool:
        return self.dedupe_on in ("phone", "email_or_phone")


# The options as clients name them (`async` is a Python keyword).
OPTION_NAMES = frozenset(field.name for field in fields(ImportOptions)) - {"run_async"} | {"async"}
BOOLEAN_OPTIONS = {"dry_run": "dry_run", "async": "run_async"}  # option → ImportOptions field


def parse_options(raw: Mapping | None, attr_prefix: str = "", also_accepted=frozenset()) -> ImportOptions:
    """Validate options given as a JSON object (`attr_prefix="options."`) or as query params (`""`).

    Query params arrive as strings (a QueryDict: `tags` may repeat); JSON values keep their types.
    Raises InvalidInput naming each bad option, and each unknown one (a mistyped `dry_run` must
    never run for real); `also_accepted` names keys that are not options but may be there.
    """
    if raw is None:
        return ImportOptions()
    if not isinstance(raw, Mapping):
        raise InvalidInput([FieldError(attr_prefix.rstrip(".") or None, "wrong_type", "Expected an object.")])
    errors: list[FieldError] = [
        FieldError(f"{attr_prefix}{name}", "unknown_option", f"Unknown import option {name!r}.")
        for name in raw
        if name not in OPTION_NAMES and name not in also_accepted
    ]
    values: dict = {}

    for name, attribute in BOOLEAN_OPTIONS.items():
        if name not in raw:
            continue
        value = raw[name]
        if isinstance(value, bool):
            values[attribute] = value
        elif isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            values[attribute] = value.strip().lower() in TRUE_WORDS
        else:
            errors.append(
                FieldError(
                    f"{attr_prefix}{name}", "wrong_type", "Expected true or false (as text also yes/no, 1/0, on/off)."
                )
            )

    for name, choices in (
        ("dedupe_on", DEDUPE_CHOICES),
        ("on_duplicate", ON_DUPLICATE_CHOICES),
        ("report", REPORT_CHOICES),
    ):
        if name not in raw:
            continue
        value = raw[name]
        if isinstance(value, str) and value.strip().lower() in choices:
            values[name] = value.strip().lower()
        else:
            errors.append(
                FieldError(f"{attr_prefix}{name}", "invalid_choice", f"Expected one of: {', '.join(choices)}.")
            )

    if "tags" in raw:
        values["tags"] = _parse_tags(raw, attr_prefix, errors)

    if errors:
        raise InvalidInput(errors)
    return ImportOptions(**values)


def _parse_tags(raw: Mapping, attr_prefix: str, errors: list[FieldError]) -> tuple[str, ...]:
    attr = f"{attr_prefix}tags"
    if hasattr(raw, "getlist"):  # query params: `?tags=a&tags=b` or `?tags=a,b`
        items = [part for value in raw.getlist("tags") for part in split_tags(value)]
    elif isinstance(raw["tags"], str):
        items = split_tags(raw["tags"])
    elif isinstance(raw["tags"], list):
        items = raw["tags"]
    else:
        errors.append(FieldError(attr, "wrong_type", "Expected a list of tag names."))
        return ()
    tags: list[str] = []
    for index, item in enumerate(items):
        try:
            name = normalize_tag(item)
        except ValueError as exc:
            errors.append(FieldError(f"{attr}.{index}", "invalid_tag", str(exc)))
            continue
        if name not in tags:
            tags.append(name)
    return tuple(tags)


def split_tags(text: str) -> list[str]:
    """A CSV cell or query value: tag names separated by `;` or `,`; blanks dropped."""
    return [part for part in text.replace(";", ",").split(",") if part.strip()]
