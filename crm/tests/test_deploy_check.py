"""Production settings pass Django's deployment checklist, and the schema builds without warnings."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

ROOT = Path(__file__).resolve().parents[2]


def production_env() -> dict:
    env = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}}
    env.update(
        PRODUCTION="1",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="crm.example.com",
        DJANGO_SETTINGS_MODULE="crm.settings",
    )
    return env


def run_manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = run_manage("check", "--deploy", "--fail-level", "DEBUG")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output, output


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    del env["SECRET_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_schema_generation_has_no_warnings(tmp_path):
    result = run_manage("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "openapi.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stderr, result.stderr


@pytest.mark.django_db
@override_settings(IMPORT_MAX_BODY_BYTES=200, API_MAX_BODY_BYTES=100)
def test_import_has_its_own_body_cap(alice):
    """/contacts/import takes up to IMPORT_MAX_BODY_BYTES (over it: 413), other endpoints API_MAX_BODY_BYTES."""
    body = {"contacts": [{"name": "Ada", "email": "ada@example.com", "notes": "x" * 40}]}
    size = len(json.dumps(body))
    assert 100 < size <= 200
    assert alice.client.post("/api/v1/contacts/import", body, format="json").status_code == 200
    assert alice.client.post("/api/v1/contacts", {"name": "Ada", "notes": "x" * 120}, format="json").status_code == 413
    big = {"contacts": [{"name": "Ada", "notes": "x" * 300}]}
    response = alice.client.post("/api/v1/contacts/import", big, format="json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert "200 bytes" in response.json()["detail"]


def test_the_wsgi_application_freezes_what_it_loaded_out_of_the_collectors_sight():
    """A full garbage collection in a worker scans only what requests allocated since it started."""
    script = "import gc, crm.wsgi; print(gc.get_freeze_count())"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) > 10_000
