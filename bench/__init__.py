"""The benchmark harness of DESIGN §5: `python -m bench run ...` (see docs/benchmarks.md).

It seeds its own database (`crm_bench`) with COPY, serves it with gunicorn, measures every
list/search shape over HTTP next to the SQL the service ran, exact counts against count(*),
import against raw COPY, and `GET /contacts/{id}` throughput with wrk, then writes a report.
"""
