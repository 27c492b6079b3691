"""The import engine: normalize every row, plan creates/updates in memory, write set-based.

`ContactImporter.run` drives the chunks of a run through the modules that do the work:
- `plan`: each row normalized (`ContactNormalizer.clean`, a bad row is reported and skipped),
  then resolved in file order against the run's contacts: update, skip, create or error;
- `lookup`: the contacts matching a chunk's emails/phones, read `FOR UPDATE`, and ids for its
  new contacts from the table's sequence;
- `stage`: the chunk's plan formatted as COPY data;
- `write`: the org's import lock (imports of one org run one at a time), then each chunk COPYed
  into staging tables and merged with set-based SQL.

Rows go through these steps in chunks of up to WRITE_CHUNK_ROWS, in file order, in the one
transaction, as a pipeline: while a background thread runs chunk k's look-ups and writes chunk
k-1 (index upkeep is most of an import's database time), the request thread normalizes chunk
k+1 and plans chunk k, so Python and PostgreSQL each keep a core busy. A row finds the contacts
of earlier chunks in the run's maps until they are written, then in the database, so the result
is the same as one chunk (tests compare them) and memory stays at about two chunks.

Dry runs normalize and plan without the lock and write nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from itertools import islice

import psycopg
from django.db import connection, transaction

from contacts.importing.lookup import Lookup
from contacts.importing.options import ImportOptions
from contacts.importing.plan import Planner
from contacts.importing.report import ImportReport
from contacts.importing.stage import Staged, Stager
from contacts.importing.write import CONFLICT_DETAIL, ChunkWriter, lock_org
from contacts.journal import Journal
from contacts.normalize import ContactNormalizer
from crm.errors import Conflict
from history.context import set_change_source

# Rows normalized while the previous chunk is written (see the module docstring). Smaller chunks
# overlap more but pay a staging table and an existing-contacts read each.
WRITE_CHUNK_ROWS = 2_500


class ContactImporter:
    """Imports rows into one org. Build once per request (or command run); `run()` per batch."""

    def __init__(self, normalizer: ContactNormalizer, options: ImportOptions, journal: Journal | None = None):
        self.normalizer = normalizer
        self.options = options
        self.journal = journal  # an async import's: what it changed, for undo
        self.org_id = normalizer.org.id
        self.membership = normalizer.membership

    def run(self, rows: Iterable[tuple[int, dict | None]], report: ImportReport | None = None) -> ImportReport:
        """Import `(row number, row)` pairs in one transaction; counts add into `report`.

        A pipeline over chunks. While the writer thread reads chunk k's existing contacts and
        then writes chunk k-1, this thread normalizes chunk k+1, then plans and stages chunk k.
        Chunk k's existing contacts are read before chunk k-1 is written, which is safe: every
        contact an earlier chunk touched is already in the run's maps, and a read contact the
        maps know is ignored.
        """
        report = report or ImportReport()
        if self.options.report == "rows" and report.rows is None:
            report.rows = []
        write = not self.options.dry_run
        report.dry_run = not write
        self._planner = Planner(self.normalizer, self.options)
        self._lookup = Lookup(self.org_id, self.options)
        self._stager = Stager(self._planner, self.org_id)
        self._writer = ChunkWriter(
            self.org_id, self.options.on_duplicate, self._planner.scope_user, self._lookup, self.journal
        )
        staged: Staged | None = None  # the previous chunk, ready to be written
        with transaction.atomic(), BackgroundWriter() as writer:
            raw = connection.connection
            if write:
                lock_org(self.org_id)
                set_change_source("import")  # the history's: whoever runs it, an import wrote these
            chunks = _chunks(rows, WRITE_CHUNK_ROWS)
            candidates = self._clean_next(chunks, report)
            while candidates is not None:
                if write:
                    self._stager.ensure_tags(candidates)
                looked_up: Future = Future()
                writer.submit(self._look_up_then_write, raw, candidates, staged, looked_up)
                upcoming = self._clean_next(chunks, report)  # overlaps the writer
                found, ids = looked_up.result()
                targets = self._planner.plan(candidates, found, ids, report)
                staged = self._stager.stage(targets) if write and targets else None  # overlaps the write
                if self._repoint(writer.wait(), staged):  # the connection is ours again
                    staged = self._stager.restage(staged)  # a raced contact changed this chunk's rows
                if write:  # what is written is found in the database from now on
                    self._planner.forget_all_but(staged.targets if staged is not None else [])
                candidates = upcoming
            if staged is not None:
                self._writer.write(raw, staged)
        return report

    def _look_up_then_write(self, raw: psycopg.Connection, candidates, staged: Staged | None, looked_up: Future):
        """The writer thread's turn: chunk k's existing contacts and new ids (into `looked_up`),
        then the write of chunk k-1 (`staged`), whose outcome is returned."""
        planner = self._planner
        try:
            with raw.cursor() as cursor:
                found = self._lookup.existing(cursor, candidates, planner.by_email.keys())
                ids = [] if self.options.dry_run else self._lookup.reserve_ids(cursor, len(candidates))
        except BaseException as exc:
            looked_up.set_exception(exc)
            raise
        looked_up.set_result((found, ids))
        return self._writer.write(raw, staged) if staged is not None else None

    def _clean_next(self, chunks: Iterator[list], report: ImportReport) -> list[tuple[int, dict, set]] | None:
        """The next chunk's valid rows (maybe none), or None after the last chunk."""
        chunk = next(chunks, None)
        return None if chunk is None else self._planner.clean(chunk, report)

    def _repoint(self, written: tuple[Staged, dict[int, str]] | None, staged: Staged | None) -> bool:
        """A single-contact create took an email this import was creating (it does not take the
        import lock), so that row merged into it or was skipped: from now on the target is that
        contact, as read back (the rows' values stay merged on top, which repeats harmlessly).
        True when `staged` (the next chunk, not yet written) holds such a target."""
        raced = written[1] if written else None
        if not raced:
            return False
        chunk = written[0]
        read = self._writer.read_back(sorted(set(raced.values())))
        by_email = {contact.email_key: contact for contact in read if contact.email_key}
        repointed = set()
        for planned_id, email in raced.items():
            target = chunk.new[planned_id]
            contact = by_email.get(email)
            if contact is None:  # deleted meanwhile: nothing left to merge into
                raise Conflict(CONFLICT_DETAIL, code="import_conflict")
            self._planner.retarget(target, contact)
            repointed.add(id(target))
        return staged is not None and any(id(t) in repointed for t in staged.targets)


def _chunks(rows: Iterable, size: int) -> Iterator[list]:
    """`rows` in chunks of `size`, smaller at both ends of the run.

    The pipeline's first chunk is normalized and planned before anything is written, and its
    last one written after everything is planned: nothing overlaps them. So chunks grow from
    size/8, doubling, and the last rows go out in halves down to size/8.
    """
    smallest = max(1, size // 8)
    iterator = iter(rows)
    buffer: deque = deque()
    want = smallest
    while True:
        buffer.extend(islice(iterator, want + size - len(buffer)))
        if len(buffer) < want + size:  # the input has ended
            break
        yield [buffer.popleft() for _ in range(want)]
        want = min(2 * want, size)
    while buffer:
        count = len(buffer) if len(buffer) <= smallest else max(smallest, (len(buffer) + 1) // 2)
        yield [buffer.popleft() for _ in range(count)]


class BackgroundWriter:
    """At most one pending write, run on a thread so the caller can compute meanwhile.

    psycopg releases the GIL while it waits for PostgreSQL, so the caller's Python work and the
    database's work overlap. The caller must `wait()` before using the connection itself. On the
    way out the pending write is always finished first (a rollback must not race it); its error
    is raised unless another one is already on its way.
    """

    def __init__(self):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer")
        self._pending: Future | None = None

    def submit(self, fn, *args) -> None:
        self.wait()
        self._pending = self._executor.submit(fn, *args)

    def wait(self):
        """The pending write's result (None if there was none); its error is raised here."""
        pending, self._pending = self._pending, None
        return pending.result() if pending is not None else None

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.wait()
            elif self._pending is not None:
                wait_for([self._pending])
        finally:
            self._executor.shutdown(wait=True)
