"""Real worker processes (`manage.py worker`) deliver to a real receiver on 127.0.0.1: one is killed
with SIGKILL while its request is at the receiver, another takes over (Procrastinate's stalled-job
recovery), and the receiver ends with every change, in feed order: the batch in flight is sent
again with the same `webhook-id` (at least once), nothing is lost (DESIGN §4, issue 21)."""

from __future__ import annotations

import threading
import time

import pytest

from jobs.tests.test_worker import STALLED_SECONDS, Worker, resumed_tasks, wait_for
from webhooks.models import Delivery
from webhooks.tests.conftest import create_webhook
from webhooks.tests.test_delivery import changes_after, make_changes

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]
BATCH = 5


@pytest.fixture
def worker_env(monkeypatch):
    """What the workers read from the environment (jobs.tests.test_worker.Worker passes it on)."""
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is on the loopback
    monkeypatch.setenv("WEBHOOK_BATCH_SIZE", str(BATCH))


def test_a_worker_killed_mid_delivery_loses_nothing(alice, receiver, settings, worker_env, tmp_path):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    webhook = create_webhook(alice, receiver)
    receiver.hold = threading.Event()  # the first request waits at the receiver
    make_changes(alice, 12)
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]

    first = Worker(logs[0])
    try:
        wait_for(receiver.held.is_set, 60, "no delivery reached the receiver", logs[:1])
        in_flight = Delivery.objects.get(webhook_id=webhook["id"])
        assert (in_flight.status, in_flight.attempts, in_flight.entry_count) == ("pending", 0, BATCH)
    finally:
        first.kill()  # while its request waits for an answer
    hold, receiver.hold = receiver.hold, None
    hold.set()  # the held request is answered, to a worker that is gone
    shown = alice.client.get(f"/api/v1/webhooks/{webhook['id']}").json()
    assert shown["cursor"] == webhook["cursor"]  # the position moves only once a 2xx is recorded
    make_changes(alice, 3, "Later")

    time.sleep(STALLED_SECONDS + 1)  # the dead worker's heartbeat is now stale
    second = Worker(logs[1])
    try:
        expected = changes_after(alice, webhook["cursor"])
        wait_for(lambda: len(receiver.entries()) >= len(expected), 90, "the second worker did not deliver", logs)
        wait_for(lambda: all_succeeded(webhook), 30, "deliveries did not all succeed", logs)
    finally:
        second.stop()

    assert resumed_tasks(logs[1]).count("webhooks.deliver") == 1
    assert receiver.entries() == expected  # every change, in feed order, each batch once by webhook-id
    requests = receiver.requests()
    assert all(r.payload is not None for r in requests), "a signature did not verify"
    assert requests[0].headers["webhook-id"] == requests[1].headers["webhook-id"] == in_flight.message_id
    assert requests[0].body == requests[1].body  # the batch in flight, sent again as it was
    retried = Delivery.objects.get(pk=in_flight.pk)
    assert (retried.status, retried.attempts) == ("succeeded", 1)  # the killed attempt never recorded an answer
    assert alice.client.get(f"/api/v1/webhooks/{webhook['id']}").json()["cursor"] == requests[-1].payload["next_cursor"]


def all_succeeded(webhook: dict) -> bool:
    rows = Delivery.objects.filter(webhook_id=webhook["id"])
    return rows.exists() and not rows.exclude(status=Delivery.Status.SUCCEEDED).exists()
