"""Every example of the README and docs/*.md is run against a live server, on the example data the
docs assume: a demo org as `make run` seeds it (its custom fields, tags, views 1 and 2), with
contacts 12, 42, 57 and 91 and members 7, 12 and 14 (ids a fresh demo org has too).

A code block runs as what it is, or as the HTML comment on the line above it says
(`<!-- example: … -->`, invisible once rendered):

- a `sh` block of `curl` commands runs each one; a `# 202` comment after a command is its status
  (default: any 2xx);
- a block whose first line is `METHOD /api/v1/…` is an exchange: the request's JSON body, a blank
  line, the status, the response body;
- `request POST /api/v1/… → 200`: the block is the JSON body of that request;
- `conditions POST /api/v1/contacts/search → 200`: each line is one condition, searched alone;
- `response GET /api/v1/…` (`(values)`: the values too, not only the shape): the block is an
  answer of that request; `answer` (or `answer (values)`): the answer of the command above;
- `file contacts.csv`: the block is a file later blocks of the page send (`--data-binary @…`);
- `not run: <why>`: shown, not run (a synopsis, SQL, a command needing another server).

An answer matches a documented one when it has every key the docs show, recursively, with values
of the same JSON type (and with `values`, the same values, but for ids and times); `…` stands for
anything, and a list matches when each item the docs show matches one of the answer's. A block
that is neither runnable nor marked fails the test: an example cannot be left unchecked by
accident.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from django.db import connection

from conftest import make_actor
from contacts.demo import seed_demo
from contacts.models import SmartListView
from contacts.testing import make_contact
from orgs.models import Membership
from orgs.tests.factories import OrganizationFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
# Whole pages whose blocks are no examples, each with why.
GENERATED = {"docs/benchmarks.md": "written by `make bench` (bench/report.py): the SQL and plans of its run"}

MARKER = re.compile(r"^<!--\s*example:\s*(?P<what>.*?)\s*-->$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
EXCHANGE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/api/\S*)$")
ARROW = re.compile(r"\s*(?:→|->)\s*(?P<status>\d{3})\s*$")
WILDCARDS = ("…", "...")
PASSWORD = "correct-horse-battery-staple"


@dataclass
class Block:
    page: str
    line: int
    lang: str
    marker: str | None
    text: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def blocks(page: str) -> list[Block]:
    found, marker, lines = [], None, (ROOT / page).read_text().splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        fence = FENCE.match(line)
        if fence:
            end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
            found.append(Block(page, index + 1, fence["lang"], marker, "\n".join(lines[index + 1 : end])))
            marker, index = None, end + 1
            continue
        if MARKER.match(line):
            marker = MARKER.match(line)["what"]
        elif line:
            marker = None  # a marker names the block right below it only
        index += 1
    return found


# --- the example data the docs assume ------------------------------------------------------------


@dataclass
class Example:
    base: str
    org_id: int
    token: str

    def substitute(self, text: str) -> str:
        for placeholder, value in (("<token>", self.token), ("<org_id>", str(self.org_id)), ("<password>", PASSWORD)):
            text = text.replace(placeholder, value)
        return text.replace("http://127.0.0.1:8000", self.base)

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", "X-Org-Id": str(self.org_id), **kwargs.pop("headers", {})}
        return requests.request(method, self.base + self.substitute(path), headers=headers, timeout=30, **kwargs)


def start_sequences_past_the_docs_ids() -> None:
    with connection.cursor() as cursor:
        for table in ("contacts_contact", "contacts_smartlistview", "auth_user", "contacts_opportunity"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST(1000, (SELECT max(id) FROM {table})))"
            )


@pytest.fixture
def example(live_server) -> Example:
    start_sequences_past_the_docs_ids()
    org = OrganizationFactory(name="Demo")
    owner = make_actor(org, "demo@example.com", Membership.Role.OWNER)
    owner.user.set_password(PASSWORD)
    owner.user.save()
    for user_id in (7, 12, 14):  # members the docs assign contacts to
        Membership.objects.create(org=org, user=UserFactory(id=user_id, username=f"user{user_id}@example.com"))
    seed_demo(owner.membership, 40)
    for view_id, view in enumerate(SmartListView.objects.for_org(org.id).order_by("position"), start=1):
        SmartListView.objects.filter(pk=view.pk).update(id=view_id)  # a fresh demo org's ids
    for contact_id, first, last, email in ((12, "Ada", "Lovelace", None), (57, "Ada", "King", "ada.king@example.com"),
                                           (91, "A.", "Lovelace", None)):  # fmt: skip
        make_contact(org, id=contact_id, first_name=first, last_name=last, name=f"{first} {last}", email=email)
    make_contacts_found_twice(org)
    example = Example(live_server.url, org.id, owner.token)
    contact_42_as_its_history_shows_it(example)
    return example


def make_contacts_found_twice(org) -> None:
    """A likely duplicate: one Gmail mailbox written two ways, one phone."""
    for email in ("ada.lovelace@gmail.com", "adalovelace@gmail.com"):
        make_contact(
            org, first_name="Ada", last_name="Lovelace", name="Ada Lovelace", email=email, phone="+442079460958"
        )


def contact_42_as_its_history_shows_it(example: Example) -> None:
    make_contact(example.org_id, id=42, first_name="Ada", last_name="Byron", name="Ada Byron", email="ada@old.example",
                 tags=["lead"])  # fmt: skip
    change = {"email": "ada@example.com", "tags": ["customer", "lead"], "custom": {"tier": "Gold"}}
    assert example.call("PATCH", "/api/v1/contacts/42", json=change).status_code == 200


# --- matching answers ----------------------------------------------------------------------------

VARYING = frozenset({"id", "at", "next", "previous", "next_cursor", "cursor", "token", "secret", "count", "ids"})


def varies(key: str) -> bool:
    return key in VARYING or key.endswith(("_id", "_at", "_by"))


def mismatches(doc, actual, values: bool, at: str = "$") -> list[str]:
    if doc is None or (isinstance(doc, str) and doc in WILDCARDS):
        return []
    if isinstance(doc, dict):
        if not isinstance(actual, dict):
            return [f"{at}: an object in the docs, {json.dumps(actual)[:80]} in the answer"]
        return [
            problem
            for key, value in doc.items()
            if key not in WILDCARDS
            for problem in (
                mismatches(value, actual[key], values and not varies(key), f"{at}.{key}")
                if key in actual
                else [f"{at}.{key}: in the docs, not in the answer"]
            )
        ]
    if isinstance(doc, list):
        return list_mismatches(doc, actual, values, at)
    return scalar_mismatches(doc, actual, values, at)


def list_mismatches(doc: list, actual, values: bool, at: str) -> list[str]:
    if not isinstance(actual, list):
        return [f"{at}: a list in the docs, {json.dumps(actual)[:80]} in the answer"]
    shown = [item for item in doc if not (isinstance(item, str) and item in WILDCARDS)]
    if values and len(shown) < len(doc) and all(not isinstance(i, dict | list) for i in shown):
        return [] if actual[: len(shown)] == shown else [f"{at}: starts {shown}, the answer {actual[:10]}"]
    if values and len(shown) == len(doc) and all(not isinstance(i, dict | list) for i in doc):
        return [] if actual == doc else [f"{at}: {doc} in the docs, {actual} in the answer"]
    problems = []
    for index, item in enumerate(shown):
        if not values and not actual and not isinstance(item, dict | list):
            continue  # no item to compare a type with: an empty list is a list of anything
        if not any(not mismatches(item, candidate, values) for candidate in actual):
            nearest = min((mismatches(item, c, values, f"{at}.{index}") for c in actual), key=len, default=None)
            problems += nearest or [f"{at}.{index}: {json.dumps(item)[:80]} in the docs, the answer's list is empty"]
    return problems


def scalar_mismatches(doc, actual, values: bool, at: str) -> list[str]:
    if actual is None:
        return []  # a value the docs show may be absent (null) in another answer
    same_type = isinstance(doc, bool) == isinstance(actual, bool) and (
        isinstance(doc, str) == isinstance(actual, str)
        and isinstance(doc, int | float) == isinstance(actual, int | float)
    )
    if not same_type:
        return [f"{at}: {json.dumps(doc)} in the docs, {json.dumps(actual)[:80]} in the answer"]
    if not values or doc == actual:
        return []
    if isinstance(doc, str) and any(w in doc for w in WILDCARDS):
        pattern = ".*".join(re.escape(part) for part in re.split(r"\.\.\.|…", doc))
        if re.fullmatch(pattern, actual, re.DOTALL):
            return []
    return [f"{at}: {json.dumps(doc)} in the docs, {json.dumps(actual)[:120]} in the answer"]


# --- running blocks ------------------------------------------------------------------------------


@dataclass
class Page:
    example: Example
    files: dict

    last: requests.Response | None = None

    def run(self, block: Block) -> list[str]:
        marker = block.marker or ""
        if marker in ("answer", "answer (values)"):
            if self.last is None:
                return [f"{block}: `answer` with no command above"]
            return [f"{block}: {p}" for p in mismatches(json.loads(block.text), self.last.json(), "values" in marker)]
        if marker.startswith("not run:"):
            return [] if marker.removeprefix("not run:").strip() else [f"{block}: `not run:` needs a reason"]
        if marker.startswith("file "):
            self.files[marker.removeprefix("file ").strip()] = block.text + "\n"
            return []
        for kind, runner in (
            ("request ", self.request),
            ("conditions ", self.conditions),
            ("response ", self.response),
        ):
            if marker.startswith(kind):
                return runner(block, marker.removeprefix(kind))
        if EXCHANGE.match(block.text.split("\n", 1)[0]):
            return self.exchange(block)
        if block.lang in ("sh", "bash", "shell") and "curl " in block.text:
            return self.curls(block)
        return [f"{block}: neither runnable nor marked (add `<!-- example: … -->` above it)"]

    def request(self, block: Block, what: str) -> list[str]:
        method, path, status = split_request(what)
        answer = self.example.call(method, path, json=json.loads(self.example.substitute(block.text)))
        return expect_status(block, answer, status)

    def conditions(self, block: Block, what: str) -> list[str]:
        method, path, status = split_request(what)
        problems = []
        for offset, line in enumerate(block.text.splitlines(), start=1):
            if line.strip():
                body = {"query": {"groups": [{"conditions": [json.loads(line)]}]}}
                answer = self.example.call(method, path, json=body)
                problems += expect_status(f"{block.page}:{block.line + offset}", answer, status)
        return problems

    def response(self, block: Block, what: str) -> list[str]:
        values = what.endswith("(values)")
        method, path, _ = split_request(what.removesuffix("(values)"))
        answer = self.example.call(method, path)
        problems = expect_status(block, answer, None)
        return problems or [f"{block}: {p}" for p in mismatches(json.loads(block.text), answer.json(), values)]

    def exchange(self, block: Block) -> list[str]:
        request, _, rest = block.text.partition("\n\n")
        first, _, body = request.partition("\n")
        method, path = EXCHANGE.match(first).groups()
        status_line, _, expected = rest.strip().partition("\n")
        payload = json.loads(self.example.substitute(body)) if body.strip() else None
        answer = self.example.call(method, path, json=payload)
        problems = expect_status(block, answer, int(status_line))
        if problems or not expected.strip():
            return problems
        return [f"{block}: {p}" for p in mismatches(json.loads(expected), answer.json(), False)]

    def curls(self, block: Block) -> list[str]:
        status = ARROW.search(block.marker or "")
        problems = []
        for argv, comments in curl_commands(self.example.substitute(block.text)):
            said = next((int(m[1]) for c in comments if (m := re.match(r"#\s*(\d{3})\b", c))), None)
            try:
                method, url, headers, data = parse_curl(argv, self.files)
            except ValueError as exc:
                problems.append(f"{block}: {exc}")
                continue
            answer = self.last = requests.request(method, url, headers=headers, data=data, timeout=60)
            problems += expect_status(block, answer, said or (int(status["status"]) if status else None))
        return problems


def split_request(what: str) -> tuple[str, str, int | None]:
    status = ARROW.search(what)
    method, path = what[: status.start()].split() if status else what.split()
    return method, path, int(status["status"]) if status else None


def expect_status(where, answer: requests.Response, status: int | None) -> list[str]:
    ok = answer.status_code == status if status else 200 <= answer.status_code < 300
    if ok:
        return []
    return [f"{where}: {answer.request.method} {answer.url} answered {answer.status_code}: {answer.text[:300]}"]


def curl_commands(text: str) -> list[tuple[list[str], list[str]]]:
    """Each command (its lines joined, a quoted argument may span lines) with the comments after it."""
    commands: list[tuple[list[str], list[str]]] = []
    pending = ""
    for line in text.replace("\\\n", " ").splitlines():
        if not pending and line.strip().startswith("#") and commands:
            commands[-1][1].append(line.strip())
            continue
        pending = f"{pending}\n{line}" if pending else line.strip()
        try:
            argv = shlex.split(pending)
        except ValueError:  # a quote still open: the argument goes on
            continue
        pending = ""
        if argv and argv[0] != "curl":
            raise AssertionError(f"not a curl command: {line!r} (mark the block `not run: …`)")
        if argv:
            commands.append((argv, []))
    assert not pending, f"an unclosed quote: {pending[:80]!r}"
    return commands


def parse_curl(argv: list[str], files: dict) -> tuple[str, str, dict, bytes | None]:
    method, url, headers, data = None, None, {}, None
    args = iter(argv[1:])
    for arg in args:
        if arg == ">":
            break  # the answer saved to a file: read here instead
        if arg in ("-X", "--request"):
            method = next(args)
        elif arg in ("-H", "--header"):
            name, _, value = next(args).partition(":")
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data", "--data-binary", "--data-raw"):
            value = next(args)
            if value.startswith("@") and arg != "--data-raw":
                if value[1:] not in files:
                    raise ValueError(f"{value[1:]} is not a file of this page (`<!-- example: file … -->`)")
                value = files[value[1:]]
            data = value.encode()
        elif arg.startswith("-") and arg not in ("-s", "-S", "-sS", "-i"):
            raise ValueError(f"curl option {arg} is not understood by this test")
        elif not arg.startswith("-"):
            url = arg
    return method or ("POST" if data is not None else "GET"), url, headers, data


# --- the tests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", [p for p in PAGES if p not in GENERATED])
def test_every_example_of_the_page_answers_what_the_page_says(example, page):
    runner = Page(example, {})
    problems = [problem for block in blocks(page) for problem in runner.run(block)]
    assert not problems, "\n".join(problems)


def test_the_pages_left_out_say_why_and_exist():
    for page, why in GENERATED.items():
        assert (ROOT / page).exists() and why


def test_the_parser_finds_every_block():
    for page in PAGES:
        fences = sum(1 for line in (ROOT / page).read_text().splitlines() if line.strip().startswith("```"))
        assert len(blocks(page)) * 2 == fences, page


def test_a_docs_answer_matches_only_what_it_shows():
    answer = {"count": 2, "results": [{"id": 1, "name": "Ada", "tags": ["a"]}, {"id": 2, "name": "Bo", "tags": []}]}
    assert mismatches({"count": 9, "results": [{"id": 5, "name": "…"}]}, answer, values=True) == []
    assert mismatches({"results": [{"name": "Bo", "tags": []}]}, answer, values=True) == []
    assert mismatches({"results": [{"name": "Cy"}]}, answer, values=True)
    assert mismatches({"results": [{"name": 3}]}, answer, values=False)
    assert mismatches({"total": 1}, answer, values=False) == ["$.total: in the docs, not in the answer"]
    assert mismatches({"message": "Enter a valid email (...)."}, {"message": "Enter a valid email (x)."}, True) == []
    assert mismatches({"ops": ["eq", "..."]}, {"ops": ["eq", "neq"]}, True) == []
    assert mismatches({"ops": ["neq", "..."]}, {"ops": ["eq", "neq"]}, True)
