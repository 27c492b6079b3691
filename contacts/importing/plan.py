"""A chunk's plan, in Python only: its rows normalized, then resolved against the run's contacts.

1. Each row goes through `ContactNormalizer.clean` (the one validation path); a bad row is
   reported and skipped.
2. Rows are resolved in file order, as if imported one at a time, against the contacts matching
   their emails/phones (read `FOR UPDATE` by `lookup`) and the rows before them: a row whose
   dedupe key matches an existing contact or an earlier row updates it (`on_duplicate=skip`:
   skips it), otherwise it creates one. A matched row that would change nothing (its values,
   derived as written, are the contact's already: `Planner._changes`) is `skipped` and its
   contact is not written, so importing a file again changes nothing, not even `updated_at`.
   The email decides before the phone, and a phone never finds a contact with another email
   (`Planner._match`). Emails stay unique per org whatever `dedupe_on` says; a row that would
   duplicate one is an error.

The run's maps (email → contact, phone → contact, id → contact) hold the contacts of the chunks
not yet written; once a chunk is written its contacts are dropped from them (`forget_all_but`)
and a later row finds them in the database like any contact. New contacts have their ids before
they are written (`lookup.reserve_ids`), so the next chunk updates them by id; the result is the
same as one chunk (tests compare them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from contacts.importing.columns import COLUMNS, DEFAULTS
from contacts.importing.lookup import Existing
from contacts.importing.options import ImportOptions
from contacts.importing.report import ImportReport
from contacts.normalize import MAX_TAGS_PER_CONTACT, ContactNormalizer
from customization.text import fold

# A raw input key → the model value it sets.
VALUE_KEY = {"assigned_to": "assigned_to_id"}
ANOTHER_PERSON = object()  # a phone match whose email differs, under `dedupe_on=phone`
PHONE_CONFLICT = "A contact with this phone has another email: it is another person; nothing was changed."


@dataclass
class Target:
    """A contact the import ends up writing: an existing one (update) or a new one (create)."""

    existing: Existing | None = None
    visible: bool = True
    given: dict = field(default_factory=dict)  # merged values of the keys the rows gave
    keys: set = field(default_factory=set)  # merged raw keys the rows gave (for derived values)
    created_id: int | None = None  # a new contact's id, reserved from the sequence when planned
    created_at: dt.datetime | None = None  # the contact's, once known (first staged, or read)
    columns: dict | None = None  # every written column, once derived (`Planner.final_values`)

    serial: int = 0  # a new contact's place in the run's creation order

    @property
    def contact_id(self) -> int | None:
        return self.existing.id if self.existing is not None else self.created_id

    @property
    def current_phone(self) -> str | None:
        return self.given.get("phone") or (self.existing.phone if self.existing is not None else None)

    def age(self) -> tuple[int, int]:
        """Older first: contacts with an id (existing, or new with a reserved id: ids grow in file
        order) by id, then new ones without (a dry run) in creation order."""
        return (0, self.contact_id) if self.contact_id is not None else (1, self.serial)


def prune(raw: dict) -> dict:
    """Drop empty inputs: an import fills what a row gives and never clears a field."""
    data = {}
    for key, value in raw.items():
        if value is None or value == [] or (isinstance(value, str) and not value.strip()):
            continue
        if key == "custom" and isinstance(value, dict):
            value = {
                k: v
                for k, v in value.items()
                if v is not None and v != [] and not (isinstance(v, str) and not v.strip())
            }
            if not value:
                continue
        data[key] = value
    return data


class Planner:
    """One run's contacts by email, phone and id, and each chunk's rows resolved against them."""

    def __init__(self, normalizer: ContactNormalizer, options: ImportOptions):
        self.normalizer = normalizer
        self.options = options
        m = normalizer.membership
        # An assigned-only member's user: they create contacts assigned to themselves, and may
        # only update those.
        self.scope_user = m.user_id if m is not None and m.sees_only_assigned else None
        self.by_email: dict[str, Target] = {}
        # Every contact of the maps that has held a phone; a row's phone finds the oldest one that
        # holds it now (`_phone_holder`), as a look-up in the database does.
        self.by_phone: dict[str, list[Target]] = {}
        self._serial = 0  # creation order of new contacts (ids come later in a dry run)
        self.by_id: dict[int, Target] = {}  # every contact of the run's maps, by id

    # --- 1. normalize -----------------------------------------------------------------

    def clean(self, rows, report: ImportReport) -> list[tuple[int, dict, set]]:
        """The chunk's valid rows as `(row number, normalized values given, raw keys given)`."""
        candidates = []
        extra_tags = list(self.options.tags)
        for number, raw in rows:
            report.total += 1
            if not isinstance(raw, dict):
                report.fail(number, [(None, "Expected an object with contact fields.")])
                continue
            data = prune(raw)
            if not data:
                report.fail(number, [(None, "The row is empty.")])
                continue
            if extra_tags:
                tags = data.get("tags", [])
                data["tags"] = [*tags, *extra_tags] if isinstance(tags, list) else tags
            values, errors = self.normalizer.clean(data, derive=False)  # final_values() derives
            if errors:
                report.fail(number, [(e.attr, e.detail) for e in errors], data)
                continue
            given = {}
            for key in data:
                value_key = VALUE_KEY.get(key, key)
                if value_key in values:
                    given[value_key] = values[value_key]
            candidates.append((number, given, set(data)))
        return candidates

    # --- 2. resolve rows against the database and each other -----------------------------

    def plan(self, candidates, found: list[Existing], ids: list[int], report: ImportReport) -> list[Target]:
        """Resolve rows in file order against the run's maps; the targets this chunk writes."""
        options = self.options
        by_email, by_phone = self.by_email, self.by_phone
        self._adopt(found)
        written: dict[int, Target] = {}  # by id(target), in order
        for number, given, keys in candidates:
            email_key = fold(given["email"]) if given.get("email") else None
            phone = given.get("phone")
            target, matched_on = self._match(email_key, phone)
            if target is ANOTHER_PERSON:
                report.conflict(number, "phone", PHONE_CONFLICT, phone, self._phone_holder(phone).contact_id)
                continue
            holder = by_email.get(email_key) if email_key else None
            if holder is not None and holder is not target:
                report.fail(number, [("email", "Another contact in this organization already has this email.")], given)
                continue
            if target is None:
                self._serial += 1
                target = Target(
                    given=dict(given), keys=set(keys), created_id=ids.pop() if ids else None, serial=self._serial
                )
                if target.created_id is not None:
                    self.by_id[target.created_id] = target
                report.outcome(number, "created", target.created_id)
            elif not target.visible:
                report.fail(
                    number,
                    [
                        (
                            matched_on,
                            f"A contact with this {matched_on} exists outside the contacts "
                            "assigned to you; it was left unchanged.",
                        )
                    ],
                    given,
                )
                continue
            elif options.on_duplicate == "skip":
                report.outcome(number, "skipped", target.contact_id, matched_on)
                continue
            else:
                merged, error = self._merged(target, given)
                if error:
                    report.fail(number, [error], given)
                    continue
                columns = self._derive(merged, target.keys | keys, target.existing)
                if not self._changes(target, merged, columns):
                    report.outcome(number, "skipped", target.contact_id, matched_on)
                    continue
                target.given, target.keys, target.columns = merged, target.keys | keys, columns
                report.outcome(number, "updated", target.contact_id, matched_on)
            written[id(target)] = target
            if email_key:
                by_email[email_key] = target
            if phone and options.dedupe_phone and target not in by_phone.setdefault(phone, []):
                by_phone[phone].append(target)
        return list(written.values())

    def _match(self, email_key: str | None, phone: str | None) -> tuple[Target | object | None, str | None]:
        """The contact a row is about, and the key that found it (DESIGN §4: identity is never
        overwritten by a match on a weaker key). The email decides first; the phone finds only a
        contact whose email is empty or the row's (a row without an email asserts none). A phone
        match with another email is another person: a new contact, or with `dedupe_on=phone`
        ANOTHER_PERSON (a conflict that changes nothing)."""
        options = self.options
        if options.dedupe_email and email_key and email_key in self.by_email:
            return self.by_email[email_key], "email"
        candidate = self._phone_holder(phone) if options.dedupe_phone and phone else None
        if candidate is None:
            return None, None
        theirs = candidate.given.get("email") or (candidate.existing.email if candidate.existing else None)
        if not email_key or not theirs or fold(theirs) == email_key:
            return candidate, "phone"
        return (ANOTHER_PERSON, "phone") if options.dedupe_on == "phone" else (None, None)

    def _adopt(self, found: list[Existing]) -> None:
        """The chunk's existing contacts join the run's maps (unless an earlier chunk has them)."""
        for contact in found:
            if contact.id in self.by_id:
                continue  # an earlier chunk has it: its state here is newer than the database's
            target = Target(contact, visible=self.scope_user is None or contact.assigned_to_id == self.scope_user)
            self.by_id[contact.id] = target
            if contact.email:
                self.by_email.setdefault(contact.email_key, target)
            # Phones are not unique: for an assigned-only member a contact they cannot see holds
            # no phone at all, so a row with that number becomes their own new contact, exactly
            # as with an unused number (anything else would answer "that number exists").
            if contact.phone and self.options.dedupe_phone and target.visible:
                self.by_phone.setdefault(contact.phone, []).append(target)

    def _phone_holder(self, phone: str) -> Target | None:
        """The oldest contact (existing ones first, by id; then new ones in file order) whose phone
        is `phone` now: the contact a phone finds, in the run's maps as in the database."""
        holders = [t for t in self.by_phone.get(phone, ()) if t.current_phone == phone]
        return min(holders, key=Target.age, default=None)

    def forget_all_but(self, keep: list[Target]) -> None:
        """Drop from the run's maps every contact but those of `keep` (the chunk not yet written).
        The others are in the database now, where a later row's look-up finds them as it finds
        any contact (as each step of an async import does): the run's memory stays at about two
        chunks, not the whole file (a 50 MB file held 160 MB of targets)."""
        kept = {id(target) for target in keep}
        self.by_email = {key: t for key, t in self.by_email.items() if id(t) in kept}
        by_phone = {key: [t for t in holders if id(t) in kept] for key, holders in self.by_phone.items()}
        self.by_phone = {key: holders for key, holders in by_phone.items() if holders}
        self.by_id = {key: t for key, t in self.by_id.items() if id(t) in kept}

    @staticmethod
    def _merged(target: Target, given: dict) -> tuple[dict, tuple[str, str] | None]:
        """`target`'s given values with the row's merged on top, or the error that refuses the row."""
        merged = dict(target.given)
        current_email = merged.get("email") or (target.existing.email if target.existing else None)
        for key, value in given.items():
            if key == "email" and current_email and fold(current_email) == fold(value):
                continue  # the same address in another case: keep the stored spelling
            if key == "tags":
                merged["tags"] = [*merged.get("tags", []), *(t for t in value if t not in merged.get("tags", []))]
            elif key == "custom":
                merged["custom"] = {**merged.get("custom", {}), **value}
            else:
                merged[key] = value
        if "tags" in merged:
            current = target.existing.tags if target.existing else []
            if len(set(current) | set(merged["tags"])) > MAX_TAGS_PER_CONTACT:
                return merged, ("tags", f"At most {MAX_TAGS_PER_CONTACT} tags per contact.")
        return merged, None

    def _changes(self, target: Target, merged: dict, columns: dict) -> bool:
        """Whether `merged` (with its derived `columns`) changes what `target` holds now: a column,
        a tag it lacks, or a custom value (canonical forms compare equal when the values are)."""
        if columns != self.final_values(target):
            return True
        existing = target.existing
        held_tags = {*target.given.get("tags", ()), *(existing.tags if existing else ())}
        if not held_tags.issuperset(merged.get("tags", ())):
            return True
        held_custom = {**(existing.custom if existing else {}), **target.given.get("custom", {})}
        # A given value is never None (`prune` drops empty inputs), so a missing key differs.
        return any(held_custom.get(key) != value for key, value in merged.get("custom", {}).items())

    def retarget(self, target: Target, contact: Existing) -> None:
        """A new contact of the plan is `contact` after all (a single create took its email, see
        `engine.ContactImporter._repoint`): from now on rows update it."""
        target.created_id, target.existing, target.created_at = None, contact, contact.created_at
        target.columns = None  # derived again over the contact it is now
        target.visible = self.scope_user is None or contact.assigned_to_id == self.scope_user
        self.by_id[contact.id] = target

    def final_values(self, target: Target) -> dict:
        """Every written column of `target` (derived once per change of its values)."""
        if target.columns is None:
            target.columns = self._derive(target.given, target.keys, target.existing)
        return target.columns

    def _derive(self, given: dict, keys: set, existing: Existing | None) -> dict:
        """Every written column of a contact given `given`, derived exactly as ContactNormalizer derives them."""
        values = {key: value for key, value in given.items() if key not in ("tags", "custom")}
        self.normalizer.derive(values, keys, existing)
        if existing is None and "assigned_to_id" not in values and self.scope_user is not None:
            values["assigned_to_id"] = self.scope_user
        base = {c: getattr(existing, c) for c in COLUMNS} if existing is not None else DEFAULTS
        return {c: values.get(c, base[c]) for c in COLUMNS}
