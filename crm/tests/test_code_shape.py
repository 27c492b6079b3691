"""The shape of the code, read with `ast`: short functions, and imports that run one way
(docs/architecture.md, "Which app may import which").

Production code only: the apps and bench/, without migrations and tests (tests may cross the
walls to build their data).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("crm", "contacts", "customization", "orgs", "jobs", "history", "changes", "webhooks", "bench")
SKIPPED_DIRS = {"migrations", "tests", "__pycache__", ".venv"}
MAX_FUNCTION_LINES = 60

APPS = ("contacts", "customization", "orgs", "jobs", "history", "changes", "webhooks")
# app -> the apps it must not import. Customization reaches contacts only through the functions
# contacts/hooks.py registers with it; jobs runs the kinds of work apps register with it
# (jobs/kinds.py), so it knows none of them.
MUST_NOT_IMPORT = {
    "orgs": ("contacts", "customization", "jobs", "history", "webhooks"),
    "customization": ("contacts", "jobs", "webhooks"),
    "jobs": ("contacts", "customization", "webhooks"),
    # The history is written by triggers; contacts reads it (its endpoint), jobs sets its context.
    "history": ("contacts", "customization", "webhooks"),
}


class Source(NamedTuple):
    path: str  # relative to the repository
    tree: ast.Module


Sources = dict[str, Source]  # dotted module name -> its source


@cache
def production_sources() -> Sources:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if SKIPPED_DIRS.isdisjoint(relative.parts):
                parts = relative.with_suffix("").parts
                name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
                found[name] = Source(str(relative), ast.parse(path.read_text(), filename=str(relative)))
    return found


def imported_names(sources: Sources, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every import of the module, nested ones included; `from a import b`
    gives `a.b`, so `from crm import api` is `crm.api`."""
    source = sources[module]
    package = module if source.path.endswith("__init__.py") else module.rpartition(".")[0]
    names = []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            names += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return names


def first_party(sources: Sources, name: str) -> str | None:
    """The production module an imported name lives in (its longest known prefix), if any."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in sources:
            return ".".join(parts[:end])
    return None


def is_api(module: str) -> bool:
    """`crm.api` and each app's `api` package: the HTTP edge."""
    parts = module.split(".")
    return len(parts) > 1 and parts[0] in ("crm", *APPS) and parts[1] == "api"


def top(name: str) -> str:
    return name.split(".")[0]


# --- functions -----------------------------------------------------------------------------------


def long_functions(sources: Sources) -> list[str]:
    found = []
    for source in sources.values():
        for node in ast.walk(source.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{source.path}:{node.lineno} {node.name}() is {length} lines")
    return sorted(found)


def test_no_function_is_longer_than_60_lines():
    long = long_functions(production_sources())
    assert not long, (
        f"{len(long)} function(s) longer than {MAX_FUNCTION_LINES} lines (def to last line); "
        "split each into named steps:\n  " + "\n  ".join(long)
    )


# --- imports -------------------------------------------------------------------------------------


def domain_reach(sources: Sources) -> dict[str, str]:
    """Every non-API module the apps' domain code loads -> a domain module that loads it (itself
    for the apps' own modules outside `api/`)."""
    reached = {m: m for m in sources if top(m) in APPS and not is_api(m)}
    queue = list(reached)
    while queue:
        module = queue.pop()
        for _, name in imported_names(sources, module):
            target = first_party(sources, name)
            if target and not is_api(target) and target not in reached:
                reached[target] = reached[module]
                queue.append(target)
    return reached


def api_imports_outside_the_edge(sources: Sources) -> list[str]:
    found = []
    for module, loaded_by in domain_reach(sources).items():
        for line, name in imported_names(sources, module):
            target = first_party(sources, name)
            if target and is_api(target):
                via = "" if loaded_by == module else f" (loaded by {sources[loaded_by].path})"
                found.append(f"{sources[module].path}:{line} imports {target}{via}")
    return sorted(found)


def upward_imports(sources: Sources) -> list[str]:
    found = []
    for module, source in sources.items():
        forbidden = MUST_NOT_IMPORT.get(top(module), ())
        found += [
            f"{source.path}:{line} imports {name}"
            for line, name in imported_names(sources, module)
            if top(name) in forbidden
        ]
    return sorted(found)


def test_domain_code_imports_no_api_layer():
    """Outside `api/`, the apps (and the crm modules they load) import neither `crm.api` nor any
    app's `api`: domain code raises crm.errors, reads caps from crm.limits, knows nothing of HTTP."""
    assert api_imports_outside_the_edge(production_sources()) == []


def test_dependencies_run_one_way():
    """orgs imports no other app; customization does not import contacts; jobs knows neither."""
    assert upward_imports(production_sources()) == []


# --- the checks see the code and fail when they should -------------------------------------------


def test_the_walk_sees_the_production_code():
    sources = production_sources()
    assert {"contacts.services", "contacts.api.views", "customization.catalog", "orgs", "bench.measure"} <= set(sources)
    assert sources["orgs"].path == "orgs/__init__.py"
    assert not [m for m in sources if ".tests" in m or ".migrations" in m]
    assert "crm.errors" in domain_reach(sources) and "crm.api.viewsets" not in domain_reach(sources)
    hooks = [name for _, name in imported_names(sources, "contacts.hooks")]
    assert "customization.catalog.register_tag_counter" in hooks


def fake(**modules: str) -> Sources:
    """Sources from text, keyed by module name (`__` for a dot)."""
    named = {name.replace("__", "."): text for name, text in modules.items()}
    return {name: Source(name.replace(".", "/") + ".py", ast.parse(text)) for name, text in named.items()}


def test_a_long_function_is_named():
    body = "\n".join(["def long():", *["    pass"] * 60])
    assert long_functions(fake(bench__x=body, bench__y="def short():\n    pass\n")) == [
        "bench/x.py:1 long() is 61 lines"
    ]


def test_an_api_import_in_domain_code_is_named_directly_or_through_crm():
    sources = fake(
        contacts__services="from crm.errors import NotFound\nfrom crm import limits\n",
        crm__errors="from crm.api.exceptions import problem\n",  # reached from domain code
        crm__limits="",
        crm__api__exceptions="",
        orgs__services="def f():\n    from orgs.api import auth\n",
        orgs__api__auth="from crm.api.exceptions import problem\n",  # the edge may
        orgs__api="",
    )
    assert api_imports_outside_the_edge(sources) == [
        "crm/errors.py:1 imports crm.api.exceptions (loaded by contacts/services.py)",
        "orgs/services.py:2 imports orgs.api.auth",
    ]


def test_an_upward_import_is_named():
    sources = fake(
        orgs__models="import customization.models\n",
        customization__api__views="from contacts.models import Contact\n",
        contacts__hooks="from customization.catalog import register_tag_counter\n",  # the allowed direction
    )
    assert upward_imports(sources) == [
        "customization/api/views.py:1 imports contacts.models.Contact",
        "orgs/models.py:1 imports customization.models",
    ]
