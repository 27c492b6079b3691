"""Import in chunks (contacts.importing.engine): a chunk is written on a background thread while
the next one is normalized. Chunking must change nothing a client can see."""

import itertools
import random
import sys
import threading

import pytest

from contacts.importing import engine, write
from contacts.models import Contact, attach_tags_and_custom
from contacts.normalize import ContactNormalizer
from customization.models import CustomField

pytestmark = pytest.mark.django_db
URL = "/api/v1/contacts/import"
COMPARED = ("first_name", "last_name", "name", "email", "phone", "company", "notes", "tags", "custom", "search_text")


def rows_with_duplicates_across_chunks() -> list[dict]:
    """30 rows: the same people again in other case, by phone only, with more tags and custom values, plus bad rows."""
    rows = []
    for i in range(10):
        phone = {"phone": f"+1415555{2600 + i:04d}"} if i % 2 == 0 else {}
        person = {"email": f"p{i}@example.com", "first_name": f"P{i}", "tags": [f"t{i % 3}"], "custom": {"seats": i}}
        rows.append({**person, **phone})
    for i in range(0, 10, 2):
        rows.append({"email": f"P{i}@EXAMPLE.com", "last_name": "Again", "phone": f"+1415555{2700 + i:04d}"})
    for i in range(0, 10, 2):
        rows.append({"phone": f"(415) 555-{2600 + i:04d}", "company": f"Co{i}", "tags": ["by-phone", "t0"]})
    rows += [{"email": "broken"}, {"custom": {"seats": "many"}, "email": "x@example.com"}, {}]
    rows += [{"email": f"p{i}@example.com", "custom": {"plan": "Gold"}} for i in (1, 9)]
    rows += [{"phone": f"+1415555{2700 + i:04d}", "notes": "moved"} for i in (0, 4)]
    # A contact found by phone takes a new email; its old email comes back chunks later.
    rows += [{"email": "old@example.com", "phone": "+14155553000"}, {}, {}, {}]
    rows += [{"email": "moved@example.com", "phone": "+14155553000"}, {}, {}, {}]
    rows += [{"email": "OLD@example.com", "company": "Back"}, {"email": "moved@example.com", "notes": "again"}]
    rows += [{"email": "new@example.com", "tags": ["t1"]}, {"email": "NEW@example.com", "tags": ["t2"]}]
    return rows


def import_rows(actor, rows, chunk_rows, monkeypatch, **options):
    monkeypatch.setattr(engine, "WRITE_CHUNK_ROWS", chunk_rows)
    response = actor.client.post(URL, {"contacts": rows, "options": options}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    contacts = {
        (c.email or "").lower() or c.phone: tuple(getattr(c, k) for k in COMPARED)
        for c in attach_tags_and_custom(list(Contact.objects.for_org(actor.org.id)))
    }
    return body, contacts


@pytest.fixture
def fields(org_a, org_b):
    for org in (org_a, org_b):
        CustomField.objects.create(org=org, key="seats", name="Seats", data_type="number")
        CustomField.objects.create(org=org, key="plan", name="Plan", data_type="text")


OPTION_PAIRS = list(itertools.product(["email", "phone", "email_or_phone", "none"], ["update", "skip"]))


@pytest.mark.parametrize(("dedupe_on", "on_duplicate"), OPTION_PAIRS)
def test_small_chunks_give_the_same_contacts_and_report_as_one_chunk(
    alice, charlie, fields, monkeypatch, dedupe_on, on_duplicate
):
    rows = rows_with_duplicates_across_chunks()
    whole = import_rows(alice, rows, 10_000, monkeypatch, dedupe_on=dedupe_on, on_duplicate=on_duplicate)
    chunked = import_rows(charlie, rows, 3, monkeypatch, dedupe_on=dedupe_on, on_duplicate=on_duplicate)
    assert chunked == whole
    merged = whole[0]["updated"] + whole[0]["skipped"]
    assert merged > 0 if dedupe_on != "none" else whole[0]["failed"] > 3  # the file does exercise merging


def random_rows(seed: int) -> list[dict]:
    """40 rows over a few emails (in any case) and phones, so rows collide every which way."""
    rng = random.Random(seed)
    emails = [f"u{i}@example.com" for i in range(6)]
    phones = [f"+1415555{2600 + i:04d}" for i in range(5)]
    rows = []
    for _ in range(40):
        row = {}
        if rng.random() < 0.7:
            email = rng.choice(emails)
            row["email"] = email.upper() if rng.random() < 0.2 else email
        if rng.random() < 0.6:
            row["phone"] = rng.choice(phones)
        for key in ("first_name", "last_name", "company", "notes"):
            if rng.random() < 0.3:
                row[key] = f"{key}{rng.randint(0, 3)}"
        if rng.random() < 0.4:
            row["tags"] = rng.sample(["a", "b", "c", "d"], rng.randint(1, 2))
        if rng.random() < 0.3:
            row["custom"] = {"seats": rng.randint(0, 9)}
        rows.append(row)
    return rows


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(("dedupe_on", "on_duplicate"), [("email_or_phone", "update"), ("phone", "update")])
def test_random_files_give_the_same_result_in_any_chunk_size(
    alice, charlie, fields, monkeypatch, seed, dedupe_on, on_duplicate
):
    rows = random_rows(seed)
    options = {"dedupe_on": dedupe_on, "on_duplicate": on_duplicate}
    whole = import_rows(alice, rows, 10_000, monkeypatch, **options)
    for chunk_rows in (1, 4):
        Contact.objects.for_org(charlie.org.id).delete()
        assert import_rows(charlie, rows, chunk_rows, monkeypatch, **options) == whole


def test_a_contact_created_meanwhile_with_an_email_being_imported_is_merged_into(alice, monkeypatch):
    """A single create does not take the import lock: if it takes an email a chunk is creating,
    that row merges into it, and later chunks update that contact, not the planned id."""
    merge = write.ChunkWriter.write
    calls = []

    def create_first(self, raw, staged):
        if not calls:
            raw.execute(
                "INSERT INTO contacts_contact (org_id, first_name, last_name, name, email, email_key, company, source,"
                " notes, dnc, folded, search_text, created_at, updated_at) VALUES (%s, '', '', 'Raced',"
                " 'R1@example.com', 'r1@example.com', '', '', 'kept', false, '{}', 'raced', now(), now())",
                [alice.org.id],
            )
        calls.append(1)
        return merge(self, raw, staged)

    monkeypatch.setattr(write.ChunkWriter, "write", create_first)
    monkeypatch.setattr(engine, "WRITE_CHUNK_ROWS", 2)
    rows = [
        {"email": "r0@example.com"},
        {"email": "r1@example.com", "company": "Import"},
        {"email": "r2@example.com"},
        {"email": "r1@example.com", "tags": ["later"]},
    ]
    body = alice.client.post(URL, {"contacts": rows}, format="json").json()
    assert (body["created"], body["updated"], body["failed"]) == (3, 1, 0)
    (r1,) = Contact.objects.for_org(alice.org.id).filter(email__iexact="r1@example.com")
    assert (r1.name, r1.notes, r1.company, r1.tags) == ("Raced", "kept", "Import", ["later"])
    assert Contact.objects.for_org(alice.org.id).count() == 3 and len(calls) >= 2  # chunk sizes vary


def test_a_conflict_in_a_background_write_is_a_409_and_nothing_is_written(alice, monkeypatch):
    # Every contact of the org gets one email: a unique violation inside a later chunk's update.
    monkeypatch.setattr(
        write.ChunkWriter,
        "update_sql",
        staticmethod(lambda table: f"UPDATE {table} SET email = 'same@example.com' WHERE org_id = %s"),
    )
    monkeypatch.setattr(engine, "WRITE_CHUNK_ROWS", 2)
    rows = [{"email": f"r{i}@example.com"} for i in range(4)] + [{"email": "r0@example.com", "company": "Again"}]
    response = alice.client.post(URL, {"contacts": rows}, format="json")
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "import_conflict"
    assert not Contact.objects.for_org(alice.org.id).exists()


def test_a_failure_while_a_chunk_is_being_written_leaves_nothing_and_no_thread(alice, monkeypatch):
    clean = ContactNormalizer.clean

    def fail_on_row_five(self, data, **kwargs):
        if data.get("email") == "r4@example.com":  # normalized while chunk 1 is written
            raise RuntimeError("boom")
        return clean(self, data, **kwargs)

    monkeypatch.setattr(ContactNormalizer, "clean", fail_on_row_five)
    monkeypatch.setattr(engine, "WRITE_CHUNK_ROWS", 3)
    rows = [{"email": f"r{i}@example.com"} for i in range(6)]
    alice.client.raise_request_exception = False
    assert alice.client.post(URL, {"contacts": rows}, format="json").status_code == 500
    assert not Contact.objects.for_org(alice.org.id).exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("import-writer")]


def test_the_background_writer_overlaps_the_callers_work():
    started, release = threading.Event(), threading.Event()

    def slow_write():
        started.set()
        assert release.wait(5)

    with engine.BackgroundWriter() as writer:
        writer.submit(slow_write)
        assert started.wait(5)  # running while the caller goes on
        release.set()
        writer.wait()


def test_the_background_writers_error_reaches_the_caller():
    def fail():
        raise ValueError("write failed")

    with pytest.raises(ValueError, match="write failed"), engine.BackgroundWriter() as writer:
        writer.submit(fail)


def test_an_import_changes_no_process_wide_setting(alice, monkeypatch):
    """Other requests of the worker run meanwhile: the collector and the GIL switch interval stay as they are."""
    import gc

    seen = []
    clean = ContactNormalizer.clean

    def spy(self, data, **kwargs):
        seen.append((gc.isenabled(), sys.getswitchinterval()))
        return clean(self, data, **kwargs)

    monkeypatch.setattr(ContactNormalizer, "clean", spy)
    monkeypatch.setattr(engine, "WRITE_CHUNK_ROWS", 2)
    before = (gc.isenabled(), sys.getswitchinterval())
    rows = [{"email": f"s{i}@example.com"} for i in range(5)]
    response = alice.client.post(URL, {"contacts": rows}, format="json")
    assert response.status_code == 200 and seen == [before] * 5
    assert (gc.isenabled(), sys.getswitchinterval()) == before
