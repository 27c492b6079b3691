"""Token rendering: `{{contact.first_name}}`, `{{contact.custom.<key>}}`, `{{custom_values.<key>}}`.

Plain regex substitution of a fixed grammar — never a template engine — so a template can
only ever read the values this module hands it:

- a recognized token with a value is replaced by that value;
- a recognized token without one (empty field, no contact given, unknown custom key or custom
  value) is replaced by "" and listed in `missing`;
- a `contact.` / `custom_values.` token outside the grammar (`{{contact.__class__}}`) is left
  verbatim and listed in `missing`, so the author sees the mistake;
- anything else between braces (`{{ 7*7 }}`, `{% load %}`) is ordinary text, left verbatim.

A recognized token may carry a fallback, `{{contact.first_name | default: "there"}}` (Liquid's
spelling; double or single quotes, no quote of the same kind inside): used when the value is
empty, and the token is then not listed in `missing` (its author provided for it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from customization.models import CustomValue

TEMPLATE_MAX_LENGTH = 20_000
_KEY = r"[a-z][a-z0-9_]{0,63}"
_BRACES = re.compile(r"\{\{([^{}]{0,200})\}\}")
_CONTACT_FIELD = re.compile(r"contact\.([a-z][a-z0-9_]{0,63})")
_CONTACT_CUSTOM = re.compile(rf"contact\.custom\.({_KEY})")
_CUSTOM_VALUE = re.compile(rf"custom_values\.({_KEY})")
_NAMESPACES = ("contact.", "custom_values.")
_FALLBACK = re.compile(r"""(?P<token>[^|]*?)\s*\|\s*default\s*:\s*(?:"(?P<double>[^"]*)"|'(?P<single>[^']*)')""")


@dataclass
class ContactContext:
    """What a template may read of one contact: its built-in fields offered as tokens, and `custom` values."""

    fields: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)


# Contacts provide contexts (customization knows nothing of contacts): a function
# `(membership, contact_id) -> ContactContext | None`, None meaning "not visible to this member".
ContactLoader = Callable[[object, int], "ContactContext | None"]
_contact_loader: ContactLoader | None = None
_token_fields: frozenset[str] = frozenset()  # `{{contact.<name>}}` names, as contacts declares them


def register_contact_loader(loader: ContactLoader, token_fields) -> None:
    global _contact_loader, _token_fields
    _contact_loader, _token_fields = loader, frozenset(token_fields)


def load_contact_context(membership, contact_id: int) -> ContactContext | None:
    if _contact_loader is None:  # pragma: no cover - contacts registers it in AppConfig.ready()
        return None
    return _contact_loader(membership, contact_id)


def as_text(value: Any) -> str:
    """A stored JSON value as template text: lists joined by ", ", booleans as true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(as_text(item) for item in value)
    return str(value)


@dataclass
class RenderResult:
    rendered: str
    missing: list[str]


def split_fallback(inside: str) -> tuple[str, str | None]:
    """What is between the braces → (token, fallback or None): `contact.first_name | default: "there"`
    → ("contact.first_name", "there")."""
    inside = inside.strip()
    found = _FALLBACK.fullmatch(inside)
    if found is None:
        return inside, None
    fallback = found.group("double") if found.group("double") is not None else found.group("single")
    return found.group("token"), fallback


def referenced_custom_value_keys(template: str) -> set[str]:
    keys = set()
    for match in _BRACES.finditer(template):
        token = _CUSTOM_VALUE.fullmatch(split_fallback(match.group(1))[0])
        if token:
            keys.add(token.group(1))
    return keys


def render(template: str, contact: ContactContext | None, custom_values: dict[str, str]) -> RenderResult:
    """Substitute tokens; `missing` lists each unfilled token once, in order of appearance."""
    missing: list[str] = []

    def note(token: str) -> None:
        if token not in missing:
            missing.append(token)

    def substitute(match: re.Match) -> str:
        token, fallback = split_fallback(match.group(1))
        value: Any = None
        if found := _CONTACT_CUSTOM.fullmatch(token):
            value = contact.custom.get(found.group(1)) if contact else None
        elif (found := _CONTACT_FIELD.fullmatch(token)) and found.group(1) in _token_fields:
            value = contact.fields.get(found.group(1)) if contact else None
        elif found := _CUSTOM_VALUE.fullmatch(token):
            value = custom_values.get(found.group(1))
        elif token.startswith(_NAMESPACES):
            note(token)
            return match.group(0)
        else:
            return match.group(0)
        text = as_text(value)
        if text == "" and fallback is not None:
            return fallback
        if text == "":
            note(token)
        return text

    return RenderResult(_BRACES.sub(substitute, template), missing)


def render_for_member(membership, template: str, contact_id: int | None) -> RenderResult | None:
    """Render with the org's custom values and, when given, a contact the member can see.

    Returns None when `contact_id` names no contact visible to the member.
    """
    contact = None
    if contact_id is not None:
        contact = load_contact_context(membership, contact_id)
        if contact is None:
            return None
    keys = referenced_custom_value_keys(template)
    values = (
        dict(CustomValue.objects.for_member(membership).filter(key__in=keys).values_list("key", "value"))
        if keys
        else {}
    )
    return render(template, contact, values)
