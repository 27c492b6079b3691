"""`python manage.py worker`: a worker of the task queue (DESIGN §4 Jobs, §6).

Runs jobs until stopped (SIGINT/SIGTERM finish the running jobs first). Start as many as you
like, on any machine that reaches the database: they share the queue (docs/scaling.md).
"""

from __future__ import annotations

import asyncio

from django.core.management.base import BaseCommand
from procrastinate.contrib.django import app

from jobs.tasks import QUEUE, retry_stalled_jobs


class Command(BaseCommand):
    help = "Run a worker of the task queue (jobs: async imports, undo)."

    def add_arguments(self, parser):
        # Two by default: a long job (a 1M-row import) in one slot leaves the other to the periodic
        # tasks and webhook deliveries, which would otherwise wait for it (docs/webhooks.md).
        parser.add_argument("--concurrency", type=int, default=2, help="Jobs run at once by this process.")
        parser.add_argument(
            "--once", action="store_true", help="Run the jobs that are waiting, then exit (tests, cron)."
        )

    def handle(self, *args, concurrency: int, once: bool, **options):
        # The web side defers through Django's connection (inside the request's transaction); a
        # worker needs its own asynchronous connection to the same database (LISTEN/NOTIFY).
        with app.replace_connector(app.connector.get_worker_connector()):
            asyncio.run(self._run(concurrency, once))

    async def _run(self, concurrency: int, once: bool) -> None:
        async with app.open_async():
            recovered = await retry_stalled_jobs()  # a worker that died while we were down
            if recovered:
                names = ", ".join(sorted(recovered))
                self.stderr.write(f"Resuming {len(recovered)} job(s) of workers that stopped: {names}.")
            await app.run_worker_async(queues=[QUEUE], concurrency=concurrency, wait=not once)
