"""The outbox relay on PostgreSQL: several relays at once publish each
event once, and the events of one aggregate in sequence order."""

import threading
import uuid

import pytest
from django.db import connections, transaction

from apps.core.messaging import outbox, relay
from apps.orders.messaging_models import OutboxEvent

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "orders"])


class RecordingPublisher:
    """Stands in for the broker: records the order of publication."""

    def __init__(self, log, lock):
        self.log, self.lock = log, lock

    def publish(self, envelopes, trace_contexts=None):
        with self.lock:
            self.log.extend((e["aggregate_id"], e["sequence"]) for e in envelopes)


def append(aggregate_id: str, count: int) -> None:
    for _ in range(count):
        with transaction.atomic(using="orders"):
            outbox.outbox_append(
                OutboxEvent,
                aggregate_id=aggregate_id,
                event_type="order.created",
                schema_version=1,
                data={},
            )


def test_append_numbers_the_events_of_an_aggregate_from_one():
    append("a", 3)
    append("b", 1)

    rows = OutboxEvent.objects.order_by("aggregate_id", "sequence")
    assert [(r.aggregate_id, r.sequence) for r in rows] == [
        ("a", 1), ("a", 2), ("a", 3), ("b", 1),
    ]  # fmt: skip
    assert all(r.envelope["sequence"] == r.sequence for r in rows)


def test_a_rolled_back_change_leaves_no_event():
    with pytest.raises(RuntimeError), transaction.atomic(using="orders"):
        append("a", 1)
        raise RuntimeError("the order change failed")

    assert not OutboxEvent.objects.exists()


def test_concurrent_relays_publish_each_event_once_and_in_order_per_aggregate():
    aggregates = [str(uuid.uuid4()) for _ in range(20)]
    for aggregate_id in aggregates:
        append(aggregate_id, 5)
    log, lock, errors = [], threading.Lock(), []

    def run_relay():
        publisher = RecordingPublisher(log, lock)
        try:
            while relay.relay_publish_pending(
                OutboxEvent, publisher=publisher, batch_size=7
            ):
                pass
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run_relay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert len(log) == 100 == len(set(log))
    for aggregate_id in aggregates:
        sequences = [seq for agg, seq in log if agg == aggregate_id]
        assert sequences == [1, 2, 3, 4, 5]
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()


def test_a_failed_publish_leaves_the_events_pending_and_counts_the_attempt():
    append("a", 1)

    class Down:
        def publish(self, envelopes, trace_contexts=None):
            raise ConnectionRefusedError("broker down")

    with pytest.raises(ConnectionRefusedError):
        relay.relay_publish_pending(OutboxEvent, publisher=Down())

    event = OutboxEvent.objects.get()
    assert event.published_at is None
    assert event.attempts == 1
    assert "broker down" in event.last_error


@pytest.mark.django_db(transaction=True, databases=["default", "orders", "catalog"])
def test_the_relay_command_publishes_each_commit_and_stops_on_sigterm(
    events_exchange, captured
):
    """`manage.py relay_outbox` as a process: woken by NOTIFY at each commit
    (its poll interval is set far longer than the deadline), it publishes to
    RabbitMQ and marks the rows; SIGTERM stops it cleanly."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import subprocess_database_env
    from tests.polling import poll
    from tests.subprocesses import ROOT

    relay_process = subprocess.Popen(
        [sys.executable, "manage.py", "relay_outbox"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            **subprocess_database_env(),
            "EVENTS_EXCHANGE": events_exchange,
            "OUTBOX_RELAY_POLL_SECONDS": "600",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        poll(lambda: "running" in relay_process.stdout.readline(), timeout=30)
        aggregate_id = str(uuid.uuid4())
        append(aggregate_id, 2)

        published = []
        poll(lambda: published.extend(captured()) or len(published) == 2)
        assert [(m["aggregate_id"], m["sequence"]) for m in published] == [
            (aggregate_id, 1),
            (aggregate_id, 2),
        ]
        poll(lambda: not OutboxEvent.objects.filter(published_at=None).exists())
    finally:
        relay_process.send_signal(signal.SIGTERM)
        code = relay_process.wait(timeout=20)
    assert code == 0
