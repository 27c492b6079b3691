"""The service runs on PostgreSQL as a managed service gives it (DESIGN §2, "Isolation below the API"):
as a role that is not a superuser, in a database whose built-in catalog is as shipped, and with no
schema object per org or per field."""

import psycopg
import pytest
from django.db import connection

from contacts.testing import make_contacts

pytestmark = pytest.mark.django_db

# Every built-in function's definition and properties (LEAKPROOF, volatility, privileges…).
CATALOG_FINGERPRINT = """
SELECT md5(string_agg(concat_ws('|', p.oid, p.proname, p.proleakproof, p.provolatile, p.proisstrict,
                                p.prosecdef, p.proconfig::text, p.proacl::text, p.prosrc), ',' ORDER BY p.oid))
FROM pg_proc p WHERE p.pronamespace = 'pg_catalog'::regnamespace
"""


def test_the_service_connects_as_a_role_that_is_not_a_superuser():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = session_user")
        assert cursor.fetchone() == (False, False)


def test_the_built_in_catalog_is_the_one_postgresql_ships():
    """Nothing in pg_catalog differs from template1's (no built-in function marked LEAKPROOF, …)."""
    with connection.cursor() as cursor:
        cursor.execute(CATALOG_FINGERPRINT)
        (ours,) = cursor.fetchone()
    params = {**connection.get_connection_params(), "dbname": "template1"}
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    with psycopg.connect(**params) as template:
        (pristine,) = template.execute(CATALOG_FINGERPRINT).fetchone()
    assert ours == pristine


def schema_objects() -> tuple[int, int]:
    """Indexes on the contact tables and extended-statistics objects of the database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'contacts\\_%%'),"
            " (SELECT count(*) FROM pg_statistic_ext)"
        )
        return cursor.fetchone()


def test_custom_fields_and_tags_of_any_number_of_orgs_create_no_schema_object(alice, charlie):
    before = schema_objects()
    for actor in (alice, charlie):
        for index, data_type in enumerate(("text", "number", "date", "datetime", "boolean", "email", "url")):
            body = {"name": f"Field {index}", "data_type": data_type}
            assert actor.client.post("/api/v1/custom-fields", body, format="json").status_code == 201
        assert actor.client.post("/api/v1/tags", {"name": "vip"}, format="json").status_code == 201
        make_contacts(actor.org, [{"name": "Ada", "tags": ["vip"], "custom": {"field_0": "x", "field_1": 3}}])
    assert schema_objects() == before
    for field in alice.client.get("/api/v1/custom-fields").json()["results"]:
        assert alice.client.delete(f"/api/v1/custom-fields/{field['id']}").status_code == 204
    assert schema_objects() == before
