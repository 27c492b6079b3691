"""Test settings: a throwaway embedded PostgreSQL unless DATABASE_URL points at a server."""

import tempfile

from crm.settings import *  # noqa: F403

EMBEDDED_PGDATA = tempfile.mkdtemp(prefix="crm-test-pg-") + "/data"
EMBEDDED_PG_THROWAWAY = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CONN_MAX_AGE = 0
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405 - live-server threads must not keep sessions open
SYNC_IMPORTS_PER_PROCESS = 8  # tests race imports in one process; test_import_api checks the cap
DEMO_LOGIN_FILE = tempfile.mkdtemp(prefix="crm-test-demo-") + "/demo-login.json"  # bootstrap_demo's kept login
