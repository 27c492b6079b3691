"""Deliveries to a real receiver on 127.0.0.1 (webhooks/tests/conftest.py), signatures verified there with
the `standardwebhooks` library. The delivery task's function runs in the test's process (a real
worker is webhooks/tests/test_worker.py's business).

Feed entries are numbered as their transaction commits, so these tests commit: `transaction=True`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.utils import timezone

from changes import feed
from webhooks import delivery, targets, transport
from webhooks.models import Delivery, Webhook
from webhooks.tests.conftest import create_webhook

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("allow_private")]


def run(webhook: dict, org_id: int) -> None:
    delivery.run(org_id, webhook["id"], seconds=20)


def changes_after(actor, cursor: str) -> list[dict]:
    """Every feed entry after `cursor`, from GET /changes."""
    entries = []
    while True:
        page = actor.client.get("/api/v1/changes", {"cursor": cursor, "limit": 200}).json()
        entries += page["results"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return entries


def make_changes(actor, count: int, prefix: str = "P") -> list[int]:
    ids = []
    for i in range(count):
        response = actor.client.post("/api/v1/contacts", {"name": f"{prefix}{i}"}, format="json")
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    return ids


def deliveries(actor, webhook: dict) -> list[dict]:
    return actor.client.get(f"/api/v1/webhooks/{webhook['id']}/deliveries").json()["results"]


def make_due(webhook: dict) -> None:
    """As if the backoff had passed."""
    past = timezone.now() - dt.timedelta(seconds=1)
    Webhook.objects.filter(pk=webhook["id"]).update(next_attempt_at=past)
    Delivery.objects.filter(webhook_id=webhook["id"], status=Delivery.Status.RETRYING).update(next_attempt_at=past)


def test_changes_arrive_in_feed_order_signed(alice, receiver):
    before = make_changes(alice, 2, "Before")  # made before the webhook: not sent
    webhook = create_webhook(alice, receiver)
    ids = make_changes(alice, 3)
    alice.client.patch(f"/api/v1/contacts/{ids[0]}", {"company": "Acme"}, format="json")
    alice.client.post("/api/v1/tags", {"name": "vip"}, format="json")
    run(webhook, alice.org.id)

    (request,) = receiver.requests()
    assert request.payload is not None, "the signature did not verify"
    assert request.headers["webhook-id"].startswith("msg_") and request.headers["Content-Type"] == "application/json"
    assert request.payload["type"] == "changes"
    expected = changes_after(alice, webhook["cursor"])
    assert request.payload["data"] == expected  # entries exactly as GET /changes shows them, in its order
    assert [(e["object"], e["event"]) for e in expected] == [
        ("contact", "created"), ("contact", "created"), ("contact", "created"), ("contact", "updated"),
        ("tag", "created"),
    ]  # fmt: skip
    assert not {e["object_id"] for e in expected if e["object"] == "contact"} & set(before)
    (log,) = deliveries(alice, webhook)
    assert (log["status"], log["attempts"], log["response_code"], log["entry_count"]) == ("succeeded", 1, 200, 5)
    assert log["latency_ms"] is not None and log["message_id"] == request.headers["webhook-id"]
    assert log["first_entry"] == expected[0]["id"]
    assert alice.client.get(f"/api/v1/webhooks/{webhook['id']}").json()["cursor"] == request.payload["next_cursor"]

    run(webhook, alice.org.id)  # nothing new: nothing sent
    assert len(receiver.requests()) == 1


def test_many_pending_changes_go_in_batches_in_order(alice, receiver, settings):
    settings.WEBHOOK_BATCH_SIZE = 3
    webhook = create_webhook(alice, receiver)
    make_changes(alice, 8)
    run(webhook, alice.org.id)
    assert [len(r.payload["data"]) for r in receiver.requests()] == [3, 3, 2]
    assert receiver.entries() == changes_after(alice, webhook["cursor"])
    assert len({r.headers["webhook-id"] for r in receiver.requests()}) == 3


def test_a_backlog_goes_batch_after_batch_without_waiting_for_the_interval(alice, receiver, settings):
    settings.WEBHOOK_BATCH_SIZE, settings.WEBHOOK_BATCH_INTERVAL_SECONDS = 2, 60
    webhook = create_webhook(alice, receiver)
    make_changes(alice, 5)
    delivery.run(alice.org.id, webhook["id"], seconds=3)  # waiting 60 s after a full batch: one batch
    assert [len(r.payload["data"]) for r in receiver.requests()] == [2, 2, 1]


def test_what_waited_behind_a_failed_batch_goes_at_once_after_it(alice, receiver, settings):
    settings.WEBHOOK_BATCH_SIZE, settings.WEBHOOK_BATCH_INTERVAL_SECONDS = 2, 60
    webhook = create_webhook(alice, receiver)
    make_changes(alice, 5)
    receiver.script = [500]
    delivery.run(alice.org.id, webhook["id"], seconds=3)  # the first batch fails: the run ends
    make_due(webhook)
    delivery.run(alice.org.id, webhook["id"], seconds=3)  # waiting 60 s after the retry: one batch
    assert [(r.answered, len(r.payload["data"])) for r in receiver.requests()] == [
        (500, 2),
        (200, 2),
        (200, 2),
        (200, 1),
    ]


def test_changes_made_while_a_caught_up_webhook_waits_go_as_one_batch(alice, receiver, settings):
    """Under a steady load, a request per interval with what gathered, not a request per change."""
    settings.WEBHOOK_BATCH_INTERVAL_SECONDS = 1.5
    webhook = create_webhook(alice, receiver)
    make_changes(alice, 1, "First")

    def deliver() -> None:  # as a worker would, on its own connection
        try:
            delivery.run(alice.org.id, webhook["id"], seconds=10)
        finally:
            connection.close()

    running = threading.Thread(target=deliver)
    running.start()
    try:
        deadline = time.monotonic() + 10
        while not receiver.requests() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(receiver.requests()) == 1  # the first change, sent at once
        make_changes(alice, 4, "During")  # within the interval after that batch started
    finally:
        running.join(20)
    assert [len(r.payload["data"]) for r in receiver.requests()] == [1, 4]
    assert receiver.entries() == changes_after(alice, webhook["cursor"])


def test_only_the_events_subscribed_are_sent(alice, receiver):
    webhook = create_webhook(alice, receiver, events=["contact.updated", "tag.*"])
    (contact,) = make_changes(alice, 1)
    alice.client.patch(f"/api/v1/contacts/{contact}", {"company": "Acme"}, format="json")
    tag = alice.client.post("/api/v1/tags", {"name": "vip"}, format="json").json()
    alice.client.delete(f"/api/v1/tags/{tag['id']}")
    run(webhook, alice.org.id)
    assert [(e["object"], e["event"]) for e in receiver.entries()] == [
        ("contact", "updated"),
        ("tag", "created"),
        ("tag", "deleted"),
    ]


def test_receiver_down_for_a_while_then_up_gets_everything_in_order_once(alice, receiver, settings):
    webhook = create_webhook(alice, receiver)
    receiver.down()
    make_changes(alice, 2)
    run(webhook, alice.org.id)
    (failed,) = deliveries(alice, webhook)
    assert (failed["status"], failed["attempts"], failed["response_code"]) == ("retrying", 1, None)
    assert "refused" in failed["error"].lower()
    due_in = dt.datetime.fromisoformat(failed["next_attempt_at"]) - dt.datetime.fromisoformat(failed["updated_at"])
    assert dt.timedelta(seconds=4) < due_in <= dt.timedelta(seconds=6)  # WEBHOOK_RETRY_SECONDS (5)

    make_changes(alice, 2, "Later")  # wait behind the failed batch
    run(webhook, alice.org.id)  # not due yet: nothing attempted
    assert deliveries(alice, webhook)[0]["attempts"] == 1

    receiver.up()
    make_due(webhook)
    run(webhook, alice.org.id)
    requests = receiver.requests()
    assert [r.headers["webhook-id"] for r in requests][0] == failed["message_id"]  # the batch as it was
    assert [len(r.payload["data"]) for r in requests] == [2, 2]
    assert receiver.entries(dedupe=False) == changes_after(alice, webhook["cursor"])  # all, in order, once
    assert [d["status"] for d in deliveries(alice, webhook)] == ["succeeded", "succeeded"]


def test_receiver_answering_500_is_retried_with_backoff_then_disabled_after_72_hours(alice, receiver):
    webhook = create_webhook(alice, receiver)
    receiver.status = 500
    make_changes(alice, 1)
    run(webhook, alice.org.id)
    make_due(webhook)
    run(webhook, alice.org.id)
    (log,) = deliveries(alice, webhook)
    assert (log["status"], log["attempts"], log["response_code"]) == ("retrying", 2, 500)
    assert log["error"] == "HTTP 500: receiver says no"
    due_in = dt.datetime.fromisoformat(log["next_attempt_at"]) - dt.datetime.fromisoformat(log["updated_at"])
    assert dt.timedelta(seconds=29) < due_in <= dt.timedelta(seconds=31)  # 5 s, then 30 s
    first, second = receiver.requests()
    assert first.headers["webhook-id"] == second.headers["webhook-id"] and first.body == second.body
    assert first.headers["webhook-timestamp"] <= second.headers["webhook-timestamp"]  # signed anew each time
    shown = alice.client.get(f"/api/v1/webhooks/{webhook['id']}").json()
    assert shown["active"] and shown["failing_since"] is not None and shown["disabled_reason"] is None

    Webhook.objects.filter(pk=webhook["id"]).update(failing_since=timezone.now() - dt.timedelta(hours=73))
    make_due(webhook)
    run(webhook, alice.org.id)
    shown = alice.client.get(f"/api/v1/webhooks/{webhook['id']}").json()
    assert shown["active"] is False
    assert "failed for 73 hours" in shown["disabled_reason"] and "HTTP 500" in shown["disabled_reason"]
    assert deliveries(alice, webhook)[0]["status"] == "failed"
    assert delivery.due_webhooks() == []  # a disabled webhook is not dispatched
    assert len(receiver.requests()) == 3


def test_a_manual_retry_resumes_a_disabled_webhook_with_the_same_batch(alice, receiver):
    webhook = create_webhook(alice, receiver)
    receiver.status = 503
    make_changes(alice, 1)
    run(webhook, alice.org.id)
    Webhook.objects.filter(pk=webhook["id"]).update(failing_since=timezone.now() - dt.timedelta(hours=80))
    make_due(webhook)
    run(webhook, alice.org.id)
    (failed,) = deliveries(alice, webhook)
    assert failed["status"] == "failed"
    make_changes(alice, 1, "Meanwhile")

    receiver.status = 200
    response = alice.client.post(f"/api/v1/webhooks/{webhook['id']}/deliveries/{failed['id']}/retry")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "retrying"
    shown = alice.client.get(f"/api/v1/webhooks/{webhook['id']}").json()
    assert (shown["active"], shown["disabled_reason"], shown["failing_since"]) == (True, None, None)
    assert delivery.due_webhooks() == [(alice.org.id, webhook["id"])]  # the dispatcher queues it now
    run(webhook, alice.org.id)
    assert receiver.requests()[-2].headers["webhook-id"] == failed["message_id"]
    assert receiver.entries() == changes_after(alice, webhook["cursor"])


def test_reactivating_by_patch_resumes_from_the_failed_delivery(alice, receiver):
    webhook = create_webhook(alice, receiver)
    receiver.status = 500
    make_changes(alice, 1)
    run(webhook, alice.org.id)
    Webhook.objects.filter(pk=webhook["id"]).update(failing_since=timezone.now() - dt.timedelta(hours=72))
    make_due(webhook)
    run(webhook, alice.org.id)
    assert Webhook.objects.get(pk=webhook["id"]).active is False
    receiver.status = 200
    patched = alice.client.patch(f"/api/v1/webhooks/{webhook['id']}", {"active": True}, format="json").json()
    assert patched["active"] and patched["disabled_reason"] is None
    run(webhook, alice.org.id)
    assert [d["status"] for d in deliveries(alice, webhook)] == ["succeeded"]
    assert receiver.entries() == changes_after(alice, webhook["cursor"])


def test_a_paused_webhook_sends_nothing_then_catches_up(alice, receiver):
    webhook = create_webhook(alice, receiver)
    alice.client.patch(f"/api/v1/webhooks/{webhook['id']}", {"active": False}, format="json")
    make_changes(alice, 2)
    assert delivery.due_webhooks() == []
    run(webhook, alice.org.id)
    assert receiver.requests() == []
    alice.client.patch(f"/api/v1/webhooks/{webhook['id']}", {"active": True}, format="json")
    run(webhook, alice.org.id)
    assert len(receiver.entries()) == 2


# --- saved views ---------------------------------------------------------------------------------------


def save_views(actor, views: list[dict]) -> list[dict]:
    response = actor.client.put("/api/v1/contacts/views", {"views": views}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["views"]


VIP_QUERY = {"groups": [{"conditions": [{"field": "tags", "op": "contains", "value": "vip"}]}]}


def test_a_webhook_on_a_saved_view_gets_only_its_contacts(alice, receiver):
    (view,) = save_views(alice, [{"name": "VIP", "query": VIP_QUERY}])
    on_view = create_webhook(alice, receiver, "/vip", events=["*"], view=view["id"])
    everything = create_webhook(alice, receiver, "/all")
    vip = alice.client.post("/api/v1/contacts", {"name": "Vera", "tags": ["vip"]}, format="json").json()
    other = alice.client.post("/api/v1/contacts", {"name": "Otto"}, format="json").json()
    for contact in (vip, other):
        deal = {"contact": contact["id"], "name": "Deal", "stage": "demo"}
        assert alice.client.post("/api/v1/opportunities", deal, format="json").status_code == 201
    alice.client.post("/api/v1/tags", {"name": "gold"}, format="json")
    run(on_view, alice.org.id)
    run(everything, alice.org.id)

    sent = receiver.entries("/vip")
    assert [(e["object"], e["event"]) for e in sent] == [("contact", "created"), ("opportunity", "created")]
    assert sent[0]["object_id"] == vip["id"] and sent[1]["changes"]["contact_id"] == [None, vip["id"]]
    everything_sent = [(e["object"], e["event"]) for e in receiver.entries("/all")]
    assert (
        sorted(everything_sent)
        == [("contact", "created")] * 2
        + [("opportunity", "created")] * 2
        + [
            ("tag", "created")  # vip (created with Vera), gold
        ]
        * 2
    )
    assert receiver.entries("/all") == changes_after(alice, everything["cursor"])


def test_a_webhook_whose_view_was_deleted_is_disabled_not_widened(alice, receiver):
    (view,) = save_views(alice, [{"name": "VIP", "query": VIP_QUERY}])
    webhook = create_webhook(alice, receiver, events=["contact.*"], view=view["id"])
    save_views(alice, [])
    make_changes(alice, 1)
    run(webhook, alice.org.id)
    assert receiver.requests() == []
    shown = alice.client.get(f"/api/v1/webhooks/{webhook['id']}").json()
    assert shown["active"] is False and f"saved view #{view['id']} was deleted" in shown["disabled_reason"]


# --- where it sends --------------------------------------------------------------------------------------


def test_it_connects_to_the_address_it_checked_and_names_the_host(alice, receiver, monkeypatch):
    """The name is resolved once, by the check; the request goes to that address with the name as Host."""
    resolved = []

    def resolve(host, port):
        resolved.append(host)
        return [ipaddress.ip_address("127.0.0.1")] if host == "receiver.test" else []

    monkeypatch.setattr(targets, "resolve", resolve)
    response = alice.client.post(
        "/api/v1/webhooks", {"url": f"http://receiver.test:{receiver.port}/hook", "events": ["*"]}, format="json"
    )
    assert response.status_code == 201, response.content
    receiver.secrets["/hook"] = response.json()["secret"]
    make_changes(alice, 1)
    resolved.clear()
    run(response.json(), alice.org.id)
    (request,) = receiver.requests()
    assert request.headers["Host"] == f"receiver.test:{receiver.port}" and request.payload is not None
    assert resolved == ["receiver.test"]


def test_a_name_that_resolves_inside_at_delivery_time_is_not_sent_to(alice, settings, monkeypatch):
    """DNS rebinding: public when the webhook was created, link-local or private when it delivers."""
    answers = {"hooks.example.com": "93.184.215.14"}
    monkeypatch.setattr(targets, "resolve", lambda host, port: [ipaddress.ip_address(answers[host])])
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = alice.client.post(
        "/api/v1/webhooks", {"url": "https://hooks.example.com/crm", "events": ["*"]}, format="json"
    )
    assert response.status_code == 201
    webhook = response.json()

    def no_connection(*args, **kwargs):
        raise AssertionError("a refused target must not be connected to")

    monkeypatch.setattr(transport, "post", no_connection)
    for inside, why in (("169.254.169.254", "link-local"), ("10.0.0.7", "private")):
        answers["hooks.example.com"] = inside
        make_changes(alice, 1)
        make_due(webhook)
        run(webhook, alice.org.id)
        log = deliveries(alice, webhook)[0]
        assert log["status"] == "retrying" and log["response_code"] is None
        assert log["error"].startswith(f"Not sent: Refused target: hooks.example.com resolves to {inside}")
        assert why in log["error"]


# --- the dispatcher -----------------------------------------------------------------------------------


def test_the_dispatcher_queues_each_webhook_with_something_due_once(alice, charlie, receiver):
    idle = create_webhook(alice, receiver, "/idle")
    webhook = create_webhook(alice, receiver)
    assert delivery.due_webhooks() == []  # nothing committed since they were created
    make_changes(alice, 1)
    assert sorted(delivery.due_webhooks()) == sorted([(alice.org.id, webhook["id"]), (alice.org.id, idle["id"])])
    assert delivery.due_webhooks() == []  # queued: not again while its run waits
    make_changes(charlie, 1)  # another org's changes are nothing to alice's webhooks
    run(webhook, alice.org.id)
    run(idle, alice.org.id)
    assert delivery.due_webhooks() == []

    receiver.status = 500
    make_changes(alice, 1)
    Webhook.objects.filter(pk=idle["id"]).update(active=False)
    assert delivery.due_webhooks() == [(alice.org.id, webhook["id"])]
    run(webhook, alice.org.id)
    assert delivery.due_webhooks() == []  # its retry is not due yet
    make_due(webhook)
    assert delivery.due_webhooks() == [(alice.org.id, webhook["id"])]


def test_a_queued_mark_left_by_a_lost_run_expires(alice, receiver):
    webhook = create_webhook(alice, receiver)
    make_changes(alice, 1)
    stale = timezone.now() - dt.timedelta(seconds=delivery.QUEUED_STALE_SECONDS + 1)
    Webhook.objects.filter(pk=webhook["id"]).update(queued_at=stale)
    assert delivery.due_webhooks() == [(alice.org.id, webhook["id"])]


def test_the_dispatch_task_queues_a_delivery_task_locked_per_webhook(alice, receiver):
    from webhooks.tasks import dispatch_webhooks

    webhook = create_webhook(alice, receiver)
    make_changes(alice, 1)
    dispatch_webhooks(timestamp=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT task_name, lock, args FROM procrastinate_jobs WHERE task_name = 'webhooks.deliver'")
        rows = cursor.fetchall()
    args = {"org_id": alice.org.id, "webhook_id": webhook["id"]}
    assert [(name, lock, json.loads(given)) for name, lock, given in rows] == [
        ("webhooks.deliver", f"webhook:{webhook['id']}", args)
    ]


def test_succeeded_deliveries_expire_and_unsettled_ones_stay(alice, receiver, settings):
    webhook = create_webhook(alice, receiver)
    make_changes(alice, 1)
    run(webhook, alice.org.id)
    receiver.status = 500
    make_changes(alice, 1)
    run(webhook, alice.org.id)
    old = timezone.now() - dt.timedelta(days=settings.WEBHOOK_DELIVERY_DAYS + 1)
    Delivery.objects.update(created_at=old)
    assert delivery.expire() == 1
    assert [d["status"] for d in deliveries(alice, webhook)] == ["retrying"]


def test_backoff_grows_six_fold_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_SECONDS, settings.WEBHOOK_RETRY_MAX_SECONDS = 5, 6 * 3600
    assert [delivery.backoff(n) for n in range(1, 8)] == [5, 30, 180, 1080, 6480, 21600, 21600]


def test_one_commit_larger_than_a_batch_is_split_and_resumed_inside_it(alice, receiver, settings):
    settings.WEBHOOK_BATCH_SIZE = 3
    webhook = create_webhook(alice, receiver, events=["contact.created"])
    rows = [{"name": f"Imported {i}", "email": f"i{i}@example.com"} for i in range(7)]
    response = alice.client.post("/api/v1/contacts/import", {"contacts": rows}, format="json")
    assert response.status_code == 200, response.content
    receiver.script = [200, 500]  # the second batch fails: the position stays inside the import's commit
    run(webhook, alice.org.id)
    inside = alice.client.get(f"/api/v1/webhooks/{webhook['id']}").json()["cursor"]
    assert inside == receiver.requests()[0].payload["next_cursor"]
    assert feed.decode_cursor(alice.org.id, inside).part < 2  # after an entry, not after the commit
    make_due(webhook)
    run(webhook, alice.org.id)
    requests = receiver.requests()
    assert [(len(r.payload["data"]), r.answered) for r in requests] == [(3, 200), (3, 500), (3, 200), (1, 200)]
    assert requests[1].headers["webhook-id"] == requests[2].headers["webhook-id"]
    entries = receiver.entries()
    assert entries == changes_after(alice, webhook["cursor"]) and len(entries) == 7
    assert len({e["at"] for e in entries}) == 1  # one commit

    # The dispatcher sees what is left of a commit after a position inside it.
    Webhook.objects.filter(pk=webhook["id"]).update(queued_at=None)
    position = feed.decode_cursor(alice.org.id, inside)
    Webhook.objects.filter(pk=webhook["id"]).update(
        position_seq=position.seq, position_part=position.part, position_id=position.id
    )
    assert delivery.due_webhooks() == [(alice.org.id, webhook["id"])]


def test_a_position_the_feed_no_longer_keeps_disables_the_webhook(alice, receiver):
    from changes.models import FeedState

    webhook = create_webhook(alice, receiver)
    make_changes(alice, 2)
    state = FeedState.objects.get(org_id=alice.org.id)
    FeedState.objects.filter(org_id=alice.org.id).update(expired_through=state.last_seq)  # retention passed
    run(webhook, alice.org.id)
    assert receiver.requests() == []
    shown = alice.client.get(f"/api/v1/webhooks/{webhook['id']}").json()
    assert shown["active"] is False and "were deleted (older than 30 days)" in shown["disabled_reason"]


def test_the_clean_up_task_expires_succeeded_deliveries(alice, receiver, settings):
    from webhooks.tasks import clean_up

    webhook = create_webhook(alice, receiver)
    make_changes(alice, 1)
    run(webhook, alice.org.id)
    Delivery.objects.update(created_at=timezone.now() - dt.timedelta(days=settings.WEBHOOK_DELIVERY_DAYS + 1))

    async def clean_up_then_close():
        await clean_up(timestamp=0)
        await sync_to_async(connections.close_all)()  # the connection of the thread that ran the ORM part

    asyncio.run(clean_up_then_close())
    assert not Delivery.objects.exists()
