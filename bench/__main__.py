"""`python -m bench run --contacts 1000000 --other-orgs 50 --other-contacts 200000`."""

from __future__ import annotations

import argparse
import shlex
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command_name", required=True)
    run = sub.add_parser("run", help="seed crm_bench, serve it with gunicorn, measure, write the report")
    run.add_argument("--contacts", type=int, default=1_000_000, help="contacts in the main org")
    run.add_argument("--other-orgs", type=int, default=50)
    run.add_argument("--other-contacts", type=int, default=200_000, help="contacts spread over the other orgs")
    run.add_argument("--reuse", action="store_true", help="keep crm_bench if it was seeded with the same sizes")
    run.add_argument("--requests", type=int, default=40, help="timed requests per shape")
    run.add_argument("--warmup", type=int, default=5)
    run.add_argument("--api-budget", type=float, default=10.0, help="seconds per shape before stopping early")
    run.add_argument("--sql-runs", type=int, default=15)
    run.add_argument("--sql-budget", type=float, default=5.0)
    run.add_argument(
        "--count-mode",
        default="none",
        choices=["none", "estimate", "exact"],
        help="count mode of the latency table (counts have their own table)",
    )
    run.add_argument("--count-requests", type=int, default=15)
    run.add_argument("--import-rows", type=int, default=100_000)
    run.add_argument("--import-batch", type=int, default=25_000)
    run.add_argument(
        "--async-import-rows",
        type=int,
        default=1_000_000,
        help="rows of the async import through the job system (and of its upsert), against COPY of the same (0: skip)",
    )
    run.add_argument(
        "--only",
        nargs="+",
        choices=["main", "async-import", "smart-list", "duplicates", "feed"],
        help="measure only these phases (with --reuse, against the database an earlier run seeded with the same "
        "sizes); `main`: the list and search shapes, counts, wrk, the synchronous import and many tenants",
    )
    run.add_argument("--wrk-seconds", type=int, default=15)
    run.add_argument("--wrk-connections", type=int, default=8)
    run.add_argument(
        "--many-tenants",
        type=int,
        default=10_000,
        help="orgs with 20 custom fields each added after the main run, then the shapes and writes again (0: skip)",
    )
    run.add_argument("--tenant-contacts", type=int, default=10, help="contacts per many-tenants org, every field set")
    run.add_argument("--write-requests", type=int, default=60, help="timed creates and PATCHes, before and after")
    run.add_argument("--out-dir", default="bench-out", help="raw results, logs")
    run.add_argument("--report", default="docs/benchmarks.md")
    run.add_argument("--chart", default="docs/benchmarks.png")
    args = parser.parse_args(argv)
    args.command = "python -m bench " + shlex.join(argv)
    from bench import runner

    return runner.run(args)


if __name__ == "__main__":
    sys.exit(main())
