"""The benchmark harness of DESIGN §5: `python -m bench run ...` (see docs/benchmarks.md).

It seeds its own database (`crm_bench`) with COPY (contacts, their tag rows and custom-value
rows, as the application builds them), migrates and serves it with gunicorn as a role that is
not a superuser, measures every list/search shape over HTTP next to the SQL the service ran,
exact counts against count(*), import against raw COPY, `GET /contacts/{id}` throughput with
wrk, and the shapes and single-contact writes again once thousands more orgs with 20 custom
fields each share the database; then writes a report.
"""
