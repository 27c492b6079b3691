"""`manage.py import_contacts`: batches through the same engine as the API, as a system write."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from contacts.models import Contact

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("import_contacts", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue().strip().splitlines()[-1]), err.getvalue()


@pytest.fixture
def csv_file(tmp_path):
    lines = ["email,name,tags,phone"] + [f"p{i}@example.com,Person {i},batch;cli," for i in range(25)]
    lines += ["P3@example.com,,extra,", "not-an-email,Bad,,", "p4@example.com,,,12"]
    path = tmp_path / "people.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    return path


def test_imports_in_batches_with_a_progress_bar(alice, carol, csv_file):
    report, progress = run(str(alice.org.id), str(csv_file), "--batch-size", "7", "--tags", "Cmd")
    assert (report["total"], report["created"], report["updated"], report["failed"]) == (28, 25, 1, 2)
    assert [(e["row"], e["field"]) for e in report["errors"]] == [(27, "email"), (28, "phone")]
    assert "100%" in progress and "28 rows" in progress
    contacts = Contact.objects.for_org(alice.org.id)
    assert contacts.count() == 25
    p3 = contacts.get(email="p3@example.com")
    assert p3.tags == ["batch", "cli", "cmd", "extra"] and p3.name == "Person 3"
    # A system write: nothing is assigned to anyone, whatever the members' scopes.
    assert not contacts.filter(assigned_to__isnull=False).exists()


def test_dry_run_and_options(alice, csv_file):
    report, _ = run(str(alice.org.id), str(csv_file), "--dry-run", "--on-duplicate", "skip", "--no-progress")
    assert (report["created"], report["skipped"], report["dry_run"]) == (25, 1, True)
    assert not Contact.objects.for_org(alice.org.id).exists()


def test_rerun_changes_nothing_and_a_changed_file_updates_instead_of_duplicating(alice, csv_file):
    run(str(alice.org.id), str(csv_file), "--no-progress")
    report, _ = run(str(alice.org.id), str(csv_file), "--no-progress", "--dedupe-on", "email")
    assert (report["created"], report["updated"], report["skipped"]) == (0, 0, 26)
    csv_file.write_text(csv_file.read_text(encoding="utf-8-sig").replace("Person 7", "Persona 7"))
    report, _ = run(str(alice.org.id), str(csv_file), "--no-progress", "--dedupe-on", "email")
    assert (report["created"], report["updated"], report["skipped"]) == (0, 1, 25)
    assert Contact.objects.for_org(alice.org.id).count() == 25
    assert Contact.objects.for_org(alice.org.id).get(email="p7@example.com").name == "Persona 7"


def test_refuses_unknown_org_missing_file_and_bad_encoding(alice, tmp_path):
    with pytest.raises(CommandError):
        run("999999", str(tmp_path / "x.csv"))
    with pytest.raises(CommandError):
        run(str(alice.org.id), str(tmp_path / "missing.csv"))
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name\nJosé\n".encode("latin-1"))
    with pytest.raises(CommandError, match="UTF-8"):
        run(str(alice.org.id), str(latin))
