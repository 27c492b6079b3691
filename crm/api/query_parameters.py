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
def documented_query_parameters() -> tuple[tuple[str, str, re.Pattern, frozenset[str]], ...]:
    """(method, path, its pattern, query parameter names) of every operation, literal paths first
    (`/contacts/fields` before `/contacts/{id}`)."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, methods in schema["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "/?$")
        for method, operation in methods.items():
            names = frozenset(p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query")
            operations.append((method.upper(), path, pattern, names))
    return tuple(sorted(operations, key=lambda operation: operation[1].count("{")))


def unknown_query_parameters(method: str, path: str, given) -> list[str]:
    """The names in `given` that the operation at (`method`, `path`) does not document; none when
    no operation is there (the router answers that request: 404 or 405)."""
    method = "GET" if method == "HEAD" else method
    for operation_method, _, pattern, names in documented_query_parameters():
        if operation_method == method and pattern.match(path):
            return sorted(set(given) - names - ALWAYS_ACCEPTED)
    return []
