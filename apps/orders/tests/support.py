"""What the orders tests assert on: the URL and the rows written."""

from apps.orders.models import (
    IdempotencyRecord,
    Order,
    OrderItem,
    OrderStatusChange,
    OutboxEvent,
)

ORDERS_URL = "/api/v1/orders"


def row_counts() -> dict[str, int]:
    return {
        "orders": Order.objects.count(),
        "items": OrderItem.objects.count(),
        "history": OrderStatusChange.objects.count(),
        "idempotency": IdempotencyRecord.objects.count(),
        "events": OutboxEvent.objects.count(),
    }


NOTHING = {"orders": 0, "items": 0, "history": 0, "idempotency": 0, "events": 0}
