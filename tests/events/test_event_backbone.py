"""The event backbone on the real RabbitMQ with real Celery worker
processes: order events reach every consumer once, in order, through
crashes, duplicates and poison."""

from pathlib import Path

import jsonschema
import pytest
from django.core.management import call_command

from apps.analytics.models import InboxEntry as AnalyticsInbox
from apps.analytics.models import SaleLine
from apps.core.messaging import dead_letters, relay
from apps.orders.events import event_schema
from apps.orders.interface import confirm_order
from apps.orders.messaging_models import InboxEntry as OrdersInbox
from apps.orders.messaging_models import Notification, OutboxEvent
from apps.products.messaging_models import InboxEntry as CatalogInbox
from tests.polling import poll

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "orders", "catalog"]
)

INBOXES = {
    "notification": OrdersInbox,
    "analytics": AnalyticsInbox,
    "inventory": CatalogInbox,
}


def place_order(client, items=(("mug", 2), ("tea", 1))) -> str:
    response = client.post(
        "/api/v1/orders",
        {"items": [{"product_id": p, "quantity": q} for p, q in items]},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def publish() -> int:
    publisher = relay.AmqpPublisher()
    try:
        return relay.relay_publish_all(publisher=publisher)
    finally:
        publisher.close()


def applied(consumer: str, order_id: str) -> list[str]:
    return list(
        INBOXES[consumer]
        .objects.filter(consumer=consumer, aggregate_id=order_id)
        .order_by("sequence")
        .values_list("event_type", flat=True)
    )


def test_every_event_of_an_order_reaches_each_consumer_once_and_matches_its_schema(
    products, customer, staff, auth_client, start_worker, consumer_env, smtp_sink,
    captured,
):  # fmt: skip
    smtp_sink.start()
    start_worker(consumer_env)
    shopper, operator = auth_client(customer), auth_client(staff)

    order_id = place_order(shopper)
    confirm_order(order_id=order_id)
    assert operator.post(f"/api/v1/orders/{order_id}/ship").status_code == 200
    assert operator.post(f"/api/v1/orders/{order_id}/complete").status_code == 200
    assert publish() == 4

    lifecycle = ["order.created", "order.confirmed", "order.shipped", "order.completed"]
    for consumer in INBOXES:
        poll(lambda c=consumer: applied(c, order_id) == lifecycle, message=consumer)
    # Published as the outbox has them, each valid against its schema.
    messages = captured()
    assert [m["event_type"] for m in messages] == lifecycle
    assert [m["sequence"] for m in messages] == [1, 2, 3, 4]
    for message in messages:
        jsonschema.validate(message, event_schema(message["event_type"]))
    assert not OutboxEvent.objects.filter(published_at__isnull=True).exists()
    # The customer was told at each status change, once.
    poll(lambda: len(smtp_sink.mailbox.messages) == 4, message="four e-mails")
    assert all(m["to"] == [customer.email] for m in smtp_sink.mailbox.messages)
    ref = order_id[:8].upper()
    assert smtp_sink.mailbox.subjects() == [
        f"We have your order {ref}",
        f"Your order {ref} is confirmed",
        f"Your order {ref} is on its way",
        f"Your order {ref} is complete",
    ]
    assert Notification.objects.filter(order_id=order_id).count() == 4
    # Analytics counted the confirmed order's lines.
    lines = {
        (line.product_id, line.category, line.quantity, str(line.revenue))
        for line in SaleLine.objects.filter(order_id=order_id)
    }
    assert lines == {("mug", "Kitchen", 2, "17.00"), ("tea", "Food", 1, "4.25")}


def test_a_consumer_killed_before_its_ack_applies_the_redelivered_event_once(
    products, customer, auth_client, start_worker, consumer_env, smtp_sink,
    tmp_path, captured,
):  # fmt: skip
    smtp_sink.start()
    crash_file = Path(tmp_path, "crash")
    crash_file.write_text("notification")
    doomed = start_worker({**consumer_env, "EVENTS_CHAOS_CRASH_FILE": str(crash_file)})
    shopper = auth_client(customer)

    order_id = place_order(shopper)
    publish()
    # The notification consumer sends, commits, and dies before its ack.
    poll(lambda: doomed.process.poll() is not None, message="the worker to die")
    assert applied("notification", order_id) == ["order.created"]
    assert len(smtp_sink.mailbox.messages) == 1

    # A new worker gets the unacknowledged event again; the inbox drops it.
    start_worker(consumer_env)
    assert shopper.post(f"/api/v1/orders/{order_id}/cancel").status_code == 200
    publish()
    poll(
        lambda: (
            applied("notification", order_id) == ["order.created", "order.cancelled"]
        ),
        message="the cancellation to be applied after the redelivery",
    )
    assert Notification.objects.filter(order_id=order_id).count() == 2
    assert len(smtp_sink.mailbox.messages) == 2
    messages = captured()
    assert [m["event_type"] for m in messages] == ["order.created", "order.cancelled"]
    for message in messages:
        jsonschema.validate(message, event_schema(message["event_type"]))
    assert messages[1]["data"]["previous_status"] == "pending"


def test_a_relay_that_dies_between_publishing_and_marking_causes_no_second_effect(
    products, customer, staff, auth_client, start_worker, consumer_env, smtp_sink,
    captured,
):  # fmt: skip
    smtp_sink.start()
    start_worker(consumer_env)
    order_id = place_order(auth_client(customer))
    confirm_order(order_id=order_id)

    class DiesAfterPublishing(relay.AmqpPublisher):
        def publish(self, envelopes, trace_contexts=None):
            super().publish(envelopes, trace_contexts)
            raise ConnectionResetError("relay died before marking the rows sent")

    dying = DiesAfterPublishing()
    with pytest.raises(ConnectionResetError):
        relay.relay_publish_all(publisher=dying)
    dying.close()
    assert OutboxEvent.objects.filter(published_at__isnull=True).count() == 2
    # The next relay publishes the same events again.
    assert publish() == 2

    for consumer in INBOXES:
        poll(
            lambda c=consumer: (
                applied(c, order_id) == ["order.created", "order.confirmed"]
            ),
            message=consumer,
        )
    types = [m["event_type"] for m in captured()]
    assert types.count("order.created") == 2  # really published twice
    # A later event is applied after both copies; each effect happened once.
    auth_client(staff).post(f"/api/v1/orders/{order_id}/ship")
    publish()
    poll(lambda: len(applied("notification", order_id)) == 3, message="shipped")
    assert Notification.objects.filter(order_id=order_id).count() == 3
    assert len(smtp_sink.mailbox.messages) == 3
    assert SaleLine.objects.filter(order_id=order_id).count() == 2


def test_a_poison_event_is_dead_lettered_after_the_attempts_and_consumed_after_replay(
    products, customer, auth_client, start_worker, consumer_env, smtp_sink,
):  # fmt: skip
    # No mail server yet: every notification attempt fails.
    start_worker(consumer_env)
    order_id = place_order(auth_client(customer))
    publish()

    letters = poll(
        lambda: dead_letters.dead_letters_list(consumer="notification"),
        message="the event in the dead-letter queue",
    )
    assert [(d.event_type, d.aggregate_id, d.attempts) for d in letters] == [
        ("order.created", order_id, 3)
    ]
    assert "Connection refused" in letters[0].error or "Errno" in letters[0].error
    assert applied("notification", order_id) == []
    # The other consumers were not held up.
    poll(lambda: applied("analytics", order_id) == ["order.created"])
    poll(lambda: applied("inventory", order_id) == ["order.created"])
    # Looking does not consume.
    assert len(dead_letters.dead_letters_list(consumer="notification")) == 1

    smtp_sink.start()
    call_command("dead_letters", "replay", "--consumer", "notification")
    poll(lambda: applied("notification", order_id) == ["order.created"])
    assert len(smtp_sink.mailbox.messages) == 1
    assert dead_letters.dead_letters_list(consumer="notification") == []


def test_events_of_one_order_are_applied_in_order_even_when_delivered_out_of_order(
    products, customer, staff, auth_client, start_worker, consumer_env, smtp_sink,
):  # fmt: skip
    smtp_sink.start()
    order_id = place_order(auth_client(customer))
    confirm_order(order_id=order_id)
    auth_client(staff).post(f"/api/v1/orders/{order_id}/ship")
    envelopes = [event.envelope for event in OutboxEvent.objects.order_by("-sequence")]

    # Delivered newest first, straight onto the exchange.
    publisher = relay.AmqpPublisher()
    publisher.publish(envelopes)
    publisher.close()
    start_worker(consumer_env)

    for consumer, inbox in INBOXES.items():
        poll(lambda c=consumer: len(applied(c, order_id)) == 3, message=consumer)
        entries = inbox.objects.filter(consumer=consumer).order_by("processed_at")
        assert [e.sequence for e in entries] == [1, 2, 3]
