import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from apps.orders import services
from apps.orders.messaging_models import InboxEntry, OutboxEvent
from apps.orders.models import IdempotencyRecord, Order
from apps.orders.retention import orders_prune_retained
from apps.orders.tasks import orders_prune_retained_task

pytestmark = pytest.mark.django_db(databases=["default", "orders", "catalog"])

BODY = {"items": [{"product_id": "kettle", "quantity": 1}]}


def _ago(seconds: int) -> timezone.datetime:
    return timezone.now() - timedelta(seconds=seconds + 60)


def test_an_idempotency_key_retried_after_its_record_was_pruned_is_a_new_order(
    customer, place, kettle, auth_client
):
    client = auth_client(customer)
    first = place(customer, BODY, key="k-old", client=client)
    recent = place(customer, BODY, key="k-recent", client=client)
    IdempotencyRecord.objects.filter(key="k-old").update(
        created_at=_ago(settings.ORDERS_IDEMPOTENCY_RETENTION_SECONDS)
    )

    counts = orders_prune_retained()
    old_again = place(customer, BODY, key="k-old", client=client)
    recent_again = place(customer, BODY, key="k-recent", client=client)

    assert counts["order_idempotency_keys"] == 1
    # Past its retention the key is forgotten: the retry places an order.
    assert old_again.status_code == 201
    assert old_again.json()["id"] != first.json()["id"]
    # Within it, the retry still answers the first response.
    assert recent_again.json() == recent.json()
    assert Order.objects.count() == 3
    assert set(IdempotencyRecord.objects.values_list("key", flat=True)) == {
        "k-old",
        "k-recent",
    }


def test_published_events_past_retention_go_but_pending_and_latest_stay(
    customer, place, kettle
):
    placed = place(customer, BODY).json()
    order_id = uuid.UUID(placed["id"])
    services.order_confirm(order_id=order_id)
    pending = place(customer, BODY).json()
    old = _ago(settings.EVENTS_OUTBOX_RETENTION_SECONDS)
    OutboxEvent.objects.filter(aggregate_id=str(order_id)).update(
        created_at=old, published_at=old
    )
    OutboxEvent.objects.filter(aggregate_id=pending["id"]).update(created_at=old)

    counts = orders_prune_retained_task.apply().get()
    services.order_cancel(order_id=order_id, actor="customer")

    assert counts["orders_outbox"] == 1
    left = OutboxEvent.objects.values_list("aggregate_id", "sequence", "event_type")
    # order.created went; order.confirmed stays as the order's latest, so
    # the next event is numbered after it, not from 1 again.
    assert sorted(left) == sorted(
        [
            (str(order_id), 2, "order.confirmed"),
            (str(order_id), 3, "order.cancelled"),
            (pending["id"], 1, "order.created"),
        ]
    )


def test_inbox_entries_past_retention_go_except_each_consumers_latest():
    old = _ago(settings.EVENTS_INBOX_RETENTION_SECONDS)
    recent = timezone.now() - timedelta(minutes=5)

    def entry(consumer, aggregate, sequence, processed_at):
        return InboxEntry.objects.create(
            consumer=consumer,
            event_id=uuid.uuid4(),
            event_type="order.test",
            aggregate_id=aggregate,
            sequence=sequence,
            processed_at=processed_at,
        )

    entry("notification", "a", 1, old)
    entry("notification", "a", 2, old)
    kept = [
        entry("notification", "a", 3, old),  # the latest of "a"
        entry("other", "a", 1, old),  # another consumer's latest of "a"
        entry("notification", "b", 1, recent),  # within retention
        entry("notification", "b", 2, recent),
    ]

    counts = orders_prune_retained()

    assert counts["orders_inbox"] == 2
    assert set(InboxEntry.objects.values_list("id", flat=True)) == {e.id for e in kept}
