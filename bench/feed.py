"""The change feed and webhooks under a steady write load (issue 21, DESIGN §5 "Change feed").

Writers PATCH contacts of the main org (a new `company` each time, so each write is one feed entry)
at RATE writes/s for SECONDS, paced, from WRITERS threads, through the bench's gunicorn. Meanwhile:
- a consumer polls `GET /changes` with the cursor it was given (from the feed's head) and notes,
  for each entry of those writes, when it first saw it;
- in the second run, a webhook of the same org points at a receiver on 127.0.0.1 (this process),
  delivered by one `manage.py worker`; the receiver notes when each entry arrived.
Latency is the wall clock when seen (or received) minus the entry's `at`, the database's clock at
the commit (one machine, one clock). Throughput: writers as fast as they can for THROUGHPUT_S,
without and with a webhook subscribed (its deliveries running), in THROUGHPUT_PAIRS alternating
pairs, the worker running throughout; the median of each side is compared (one 20 s sample each
swung by 20% with autovacuum and the worker's periodic tasks).
"""

from __future__ import annotations

import collections
import datetime as dt
import http.server
import json
import random
import statistics
import threading
import time
from pathlib import Path

from bench import seed
from bench.asyncimport import Worker
from bench.db import BenchDatabase
from bench.server import Client

RATE = 200
SECONDS = 60
WRITERS = 8
THROUGHPUT_S = 20
THROUGHPUT_PAIRS = 5  # with 3, the medians' ratio still moved by ±6% from one run to the next
SUSTAINED = 0.95  # the paced runs count as sustaining RATE when they reach this share of it
SETTLE_S = 10  # after the last write: what is still on its way may arrive


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] feed: {message}", flush=True)


def _at(entry: dict) -> float:
    return dt.datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()


class Writers:
    """WRITERS threads PATCHing the sample contacts: paced at `rate` writes/s, or as fast as they can."""

    def __init__(self, port: int, tokens: list[str], org_id: int, contact_ids: list[int]):
        self.port, self.tokens, self.org_id, self.contact_ids = port, tokens, org_id, contact_ids
        self.statuses: list[int] = []

    def run(self, seconds: float, rate: float | None) -> dict:
        start = time.monotonic() + 0.2
        done = [0] * WRITERS

        def work(n: int) -> None:
            client = Client(self.port, self.tokens[n::WRITERS], self.org_id, timeout=60)
            rng, k = random.Random(), 0  # not seeded: a rerun's values are new, so every write is a change
            while True:
                due = start + (k * WRITERS + n) / rate if rate else time.monotonic()
                if due - start >= seconds:
                    break
                time.sleep(max(0.0, due - time.monotonic()))
                contact = rng.choice(self.contact_ids)
                status, _, _ = client.call("PATCH", f"/api/v1/contacts/{contact}", {"company": f"Feed {rng.random()}"})
                self.statuses.append(status)
                done[n] += status == 200
                k += 1
            client.close()

        threads = [threading.Thread(target=work, args=(n,)) for n in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
        return {"writes": sum(done), "seconds": round(elapsed, 1), "writes_per_s": round(sum(done) / elapsed, 1),
                "non_200": dict(collections.Counter(s for s in self.statuses if s != 200))}  # fmt: skip


def head_cursor(org_id: int) -> str:
    """The cursor after the org's last committed entry (changes.feed.head, read by this process's
    Django as the owner), as a consumer that has read everything holds it: reading earlier runs'
    millions of entries through the API would take minutes."""
    from changes import feed

    return feed.encode_cursor(org_id, feed.head(org_id))


class Consumer(threading.Thread):
    """Polls the feed from where it ends when started; `seen[entry id] = (wall clock when first
    seen, entry's at)` for the entries committed since."""

    def __init__(self, port: int, tokens: list[str], org_id: int):
        super().__init__(daemon=True)
        self.client = Client(port, tokens, org_id, timeout=60)  # several tokens: the rate limit is per token
        self.seen: dict[str, tuple[float, float]] = {}
        self.duplicates = 0
        self.stop = threading.Event()
        self.since = time.time()
        self.cursor = head_cursor(org_id)

    def _poll(self) -> bool:
        """One page after the cursor; whether more is ready now."""
        params = {"limit": 200, **({"cursor": self.cursor} if self.cursor else {})}
        status, page, _ = self.client.call("GET", "/api/v1/changes", params=params)
        if status != 200:
            time.sleep(0.2)  # 429 (the per-token limit) or a hiccup: the same cursor again
            return True
        now = time.time()
        for entry in page["results"]:
            at = _at(entry)
            if at < self.since:
                continue
            if entry["id"] in self.seen:
                self.duplicates += 1
            self.seen.setdefault(entry["id"], (now, at))
        self.cursor = page["next_cursor"]
        return page["has_more"]

    def run(self) -> None:
        while not self.stop.is_set():
            if not self._poll():
                time.sleep(0.05)


class Receiver:
    """A webhook receiver on 127.0.0.1: notes when each delivered entry first arrived."""

    def __init__(self):
        self.arrived: dict[str, tuple[float, float]] = {}
        self.requests = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                receiver.requests += 1
                payload = json.loads(body or b"{}")
                entries = payload.get("data") if isinstance(payload, dict) else payload
                for entry in entries or []:
                    receiver.arrived.setdefault(entry["id"], (now, _at(entry)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def latencies(notes: dict[str, tuple[float, float]]) -> dict:
    values = sorted(max(0.0, seen - at) for seen, at in notes.values())
    if not values:
        return {"entries": 0}
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return {"entries": len(values), "p50_s": round(statistics.median(values), 3), "p99_s": round(pick(0.99), 3),
            "max_s": round(values[-1], 3)}  # fmt: skip


def subscribe(owner: Client, receiver: Receiver) -> dict:
    status, hook, _ = owner.call("POST", "/api/v1/webhooks", {"url": receiver.url, "events": ["contact.updated"]})
    if status != 201:
        raise RuntimeError(f"POST /webhooks answered {status}: {hook}")
    return hook


def paced_run(writers: Writers, consumer: Consumer, receiver: Receiver | None) -> dict:
    consumer.start()
    writes = writers.run(SECONDS, RATE)
    time.sleep(SETTLE_S)
    consumer.stop.set()
    consumer.join(10)
    out = {"load": writes, "feed": latencies(consumer.seen), "feed_duplicates": consumer.duplicates}
    if receiver is not None:
        out["webhook"] = latencies(receiver.arrived)
        out["webhook_requests"] = receiver.requests
    return out


def run(database: BenchDatabase, server, cast: seed.Cast, tokens: list[str], out_dir: Path) -> dict:
    contact_ids = cast.sample["contact_ids"]
    port, org = server.port, cast.main_org
    results: dict = {"rate": RATE, "seconds": SECONDS, "writers": WRITERS}
    log(f"{RATE} PATCHes/s for {SECONDS} s, a consumer polling GET /changes")
    writers = Writers(port, tokens, org, contact_ids)
    results["without_webhook"] = paced_run(writers, Consumer(port, tokens[:4], org), None)
    log(f"without a webhook: {json.dumps(results['without_webhook'])}")

    worker = Worker(server.env, out_dir / "feed-worker.log")
    receiver = Receiver()
    owner = Client(port, tokens[0], org)
    try:
        worker.start(database)
        hook = subscribe(owner, receiver)
        log(f"webhook {hook['id']} to {receiver.url}, worker {worker.proc.pid}; {RATE} PATCHes/s for {SECONDS} s")
        results["with_webhook"] = paced_run(
            Writers(port, tokens, org, contact_ids), Consumer(port, tokens[:4], org), receiver
        )
        log(f"with a webhook: {json.dumps(results['with_webhook'])}")
        owner.call("DELETE", f"/api/v1/webhooks/{hook['id']}")
        samples: dict[str, list] = {"without": [], "with": []}
        for _ in range(THROUGHPUT_PAIRS):
            samples["without"].append(Writers(port, tokens, org, contact_ids).run(THROUGHPUT_S, None))
            hook = subscribe(owner, receiver)  # a new one starts at the feed's head: no backlog
            samples["with"].append(Writers(port, tokens, org, contact_ids).run(THROUGHPUT_S, None))
            owner.call("DELETE", f"/api/v1/webhooks/{hook['id']}")
            log(f"throughput without / with a webhook: {samples['without'][-1]} / {samples['with'][-1]}")
    except RuntimeError as exc:
        return {**results, "error": str(exc)}
    finally:
        owner.close()
        worker.stop()
        receiver.close()
    for side, runs in samples.items():
        results[f"throughput_{side}"] = {
            "writes_per_s": statistics.median(run["writes_per_s"] for run in runs),
            "samples": [run["writes_per_s"] for run in runs],
            "non_200": sum((collections.Counter(run["non_200"]) for run in runs), collections.Counter()),
        }
    without, with_ = results["throughput_without"]["writes_per_s"], results["throughput_with"]["writes_per_s"]
    results["throughput_ratio"] = round(with_ / without, 3) if without else None
    feed_p99 = results["with_webhook"]["feed"].get("p99_s")
    hook_p99 = results["with_webhook"]["webhook"].get("p99_s")
    reached = [results[key]["load"]["writes_per_s"] for key in ("without_webhook", "with_webhook")]
    results["met"] = {
        "rate_sustained": min(reached) >= SUSTAINED * RATE,
        "feed_p99_le_1s": feed_p99 is not None and feed_p99 <= 1 and results["without_webhook"]["feed"]["p99_s"] <= 1,
        "webhook_p99_le_2s": hook_p99 is not None and hook_p99 <= 2,
        "throughput_within_10pct": results["throughput_ratio"] is not None and results["throughput_ratio"] >= 0.9,
    }
    return results
