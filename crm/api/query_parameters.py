"""Unknown query parameters are a 422 naming them (DESIGN §4: a misspelled filter must never look
like it worked).

The parameters an operation accepts are the ones its OpenAPI description documents, read once per
process from drf-spectacular's schema generator: what is enforced and what is published cannot
disagree. `format` (DRF's and drf-spectacular's) is always accepted.
"""

from __future__ import annotations

import functools
import re

from drf_spectacular.generators import SchemaGenerator

ALWAYS_ACCEPTED = frozenset({"format"})


@functools.cache
def documented_query_parameters() -> tuple[tuple[str, re.Pattern, dict[str, frozenset[str]]], ...]:
    """(path, its pattern, {method: query parameter names}) of every path of the schema, literal
    paths first (`/contacts/fields` before `/contacts/{id}`)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    paths = []
    for path, operations in schema["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "/?$")
        methods = {
            method.upper(): frozenset(p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query")
            for method, operation in operations.items()
        }
        paths.append((path, pattern, methods))
    return tuple(sorted(paths, key=lambda entry: entry[0].count("{")))


def unknown_query_parameters(method: str, path: str, given) -> list[str]:
    """The names in `given` that the operation at (`method`, `path`) does not document; none when
    the schema has no such operation (the router answers that request: 404 or 405)."""
    method = "GET" if method == "HEAD" else method
    for _, pattern, methods in documented_query_parameters():
        if pattern.match(path):
            names = methods.get(method)
            return sorted(set(given) - names - ALWAYS_ACCEPTED) if names is not None else []
    return []
