"""The async import bench's rows and report (no database): run with `pytest bench/tests`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools

from bench import asyncimport, importbench, report
from contacts.importing.parsing import CsvRows
from customization.field_types import FIELD_TYPES

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TYPES = {key: (data_type, options) for key, _, data_type, options in asyncimport.data.CUSTOM_FIELDS}


def as_csv(contacts) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(asyncimport.CSV_HEADER)
    writer.writerows(asyncimport.csv_row(contact) for contact in contacts)
    return out.getvalue()


def test_the_csv_reads_back_as_the_rows_the_raw_side_copies():
    contacts = list(importbench.iter_rows(7, 400, 101, "aimp.", now=NOW))
    parsed = list(CsvRows(as_csv(contacts), asyncimport.CUSTOM_KEYS))
    assert [number for number, _ in parsed] == list(range(1, 401))
    for contact, (_, row) in zip(contacts, parsed, strict=True):
        for name in ("first_name", "last_name", "email", "phone", "company", "source", "notes"):
            assert row[name] == (contact[name] or ""), name
        assert row["dnc"] == ("true" if contact["dnc"] else "false")
        assert row["tags"] == contact["tags"]
        given = {key: cell for key, cell in row["custom"].items() if cell != ""}  # empty cells fill nothing
        assert given.keys() == contact["custom"].keys()
        for key, cell in given.items():
            data_type, options = TYPES[key]
            assert FIELD_TYPES[data_type].canonicalize(cell, options=options) == contact["custom"][key], key


def test_the_upsert_pass_is_the_first_pass_again_its_first_half_changed():
    first = list(importbench.iter_rows(7, 100, 101, "aimp.", now=NOW))
    again = list(asyncimport.upsert_rows(7, 100, NOW))
    assert [c["email"] for c in again] == [c["email"] for c in first]
    assert again[50:] == first[50:]
    changed = [a for a, b in zip(again[:50], first[:50], strict=True) if a != b]
    assert len(changed) >= 45
    assert all("external_id" not in c["custom"] for c in again[:50])


def test_the_rows_come_in_the_same_order_whatever_the_chunks():
    rows = importbench.iter_rows(7, 60, 101, "aimp.", now=NOW)
    chunks = [list(itertools.islice(rows, 25)) for _ in range(3)]
    assert sum(chunks, []) == list(importbench.iter_rows(7, 60, 101, "aimp.", now=NOW))


def section(new_ratio: float, upsert_ratio: float, growth: float) -> dict:
    def part(ratio, raw, status="succeeded"):
        result = {"created": 1000, "updated": 0, "skipped": 0, "failed": 0}
        job = {"status": status, "total_s": 2.0, "post_s": 0.1, "queued_s": 0.1, "worker_s": 1.7,
               "result": result, "memory": {"peak_mb": 150.0}}  # fmt: skip
        return {"rows": 1000, "csv_bytes": 200_000, "raw_s": 1.0, "raw_rows_per_s": raw,
                "async_rows_per_s": raw * ratio, "ratio": ratio, "async": job}  # fmt: skip

    memory = {"start_mb": 80.0, "peak_mb": 80.0 + growth, "end_mb": 100.0, "growth_mb": growth, "samples": 10}
    return {"rows": 1000, "options": importbench.OPTIONS, "chunk": 25_000, "sample_s": 0.5,
            "new": part(new_ratio, 1000.0), "upsert": part(upsert_ratio, 800.0), "worker_memory": memory}  # fmt: skip


def test_the_report_says_what_met_the_targets():
    lines = report.async_import_section({"async_import": section(0.6, 0.55, 120.0)})
    table = [line for line in lines if line.startswith("| async")]
    assert len(table) == 2 and all(line.endswith("| met |") for line in table)
    assert "60%" in table[0] and "**growth 120 MB**" in lines[-1] and "met)." in lines[-1]
    assert report.async_shortfalls(section(0.6, 0.55, 120.0)) == []


def test_the_report_names_each_shortfall():
    short = report.async_shortfalls(section(0.3, 0.55, 250.0))
    assert len(short) == 2
    assert short[0].startswith("async import of new contacts: 30% of COPY's rows/s")
    assert "grew 250 MB" in short[1]
    failed = section(0.6, 0.6, 10.0)
    failed["upsert"]["async"]["status"] = "failed"
    failed["upsert"].pop("ratio")
    assert report.async_shortfalls(failed) == [
        "async upsert (half changed): n/a of COPY + merge's rows/s (target ≥ 50%); job failed"
    ]


def test_a_run_of_the_async_phase_alone_reports_no_other_section():
    results = {"args": {"requests": 1, "warmup": 1, "count_mode": "none", "sql_runs": 1}}
    assert report.shapes_section(results) == report.counts_section(results) == []
    assert report.import_section(results) == report.wrk_section(results) == []
    assert report.shortfalls(results | {"service_role": {}})[1:] == []
