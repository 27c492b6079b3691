"""The events a webhook can subscribe to: `<object>.<event>` of the change feed's entries.

The catalog is read from the models whose rows are the feed's entries (contacts' history, the other
objects' `ObjectChange`), so an event the feed can carry is an event a webhook can name. Wildcards:
`*` (every event of every object) and `<object>.*` (every event of one object).
"""

from __future__ import annotations

from changes.models import ObjectChange
from history.models import ContactChange

CATALOG: dict[str, tuple[str, ...]] = {
    "contact": tuple(ContactChange.Event.values),
    **{obj: tuple(ObjectChange.Event.values) for obj in ObjectChange.Object.values},
}
# What a webhook on a saved view can receive: the entries about a contact (its own, its opportunities').
CONTACT_OBJECTS = ("contact", "opportunity")
ALL = "*"
NAMES: tuple[str, ...] = (
    ALL,
    *(f"{obj}.*" for obj in CATALOG),
    *(f"{obj}.{event}" for obj, events in CATALOG.items() for event in events),
)
MAX_EVENTS = len(NAMES)


def normalize(names: list[str]) -> list[str]:
    """The names once each, in catalog order (the caller has checked that each is in NAMES)."""
    wanted = set(names)
    return [name for name in NAMES if name in wanted]


def objects_of(names: list[str]) -> set[str]:
    """The objects whose entries the names can select."""
    if ALL in names:
        return set(CATALOG)
    return {name.split(".", 1)[0] for name in names}


class Matcher:
    """Whether an entry (object, event) is one of a webhook's events."""

    def __init__(self, names: list[str]):
        self.everything = ALL in names
        self.whole_objects = {name[:-2] for name in names if name.endswith(".*")}
        self.exact = set(names)

    def __call__(self, obj: str, event: str) -> bool:
        return self.everything or obj in self.whole_objects or f"{obj}.{event}" in self.exact
