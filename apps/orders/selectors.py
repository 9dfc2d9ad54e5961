"""Orders reads: lists, one order with its items and history, the API
representation of an order, stored idempotent answers."""

from typing import Any
from uuid import UUID

from django.db.models import Count, QuerySet

from apps.core.timestamps import iso_utc
from apps.orders.errors import OrderNotFound
from apps.orders.models import IdempotencyRecord, Order, OrderStatus, OutboxEvent


def _orders(*, history: bool = True) -> QuerySet:
    """Orders with their items (and history) prefetched."""
    return Order.objects.prefetch_related("items", *(["history"] if history else []))


def order_list(*, user_id: UUID | None = None, status: str | None = None) -> QuerySet:
    """Orders, newest first, with items and history prefetched; every
    user's when ``user_id`` is None."""
    queryset = _orders()
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    if status is not None:
        queryset = queryset.filter(status=status)
    return queryset.order_by("-created_at", "-id")


def order_get(
    *, order_id: UUID, user_id: UUID | None = None, history: bool = True
) -> Order:
    """The order with its items (and history, unless ``history=False``).

    With ``user_id``, only that user's order: another user's is not found
    (a customer does not learn that it exists).
    """
    queryset = _orders(history=history)
    if user_id is not None:
        queryset = queryset.filter(user_id=user_id)
    try:
        return queryset.get(pk=order_id)
    except Order.DoesNotExist:
        raise OrderNotFound(f"No order {order_id}.") from None


def order_events(*, order_id: UUID) -> QuerySet:
    """The order's outbox events, in order."""
    return OutboxEvent.objects.filter(aggregate_id=str(order_id)).order_by("sequence")


def idempotent_response(*, user_id: UUID, key: str) -> tuple[int, dict[str, Any]]:
    """The status and body first answered to ``user_id``'s placement with
    Idempotency-Key ``key``."""
    record = IdempotencyRecord.objects.get(user_id=user_id, key=key)
    return record.response_status, record.response_body


def order_representation(order: Order) -> dict[str, Any]:
    """The order as the API shows it (and as an idempotency record keeps
    it), JSON-ready. The payment method is a provider token: never shown.

    ``serializers.OrderSerializer`` documents this shape; a test keeps the
    two equal.
    """
    return {
        "id": str(order.id),
        "user_id": str(order.user_id),
        "status": order.status,
        "total_amount": f"{order.total_amount:.2f}",
        "cancel_reason": order.cancel_reason,
        "items": [
            {
                "product_id": item.product_id,
                "name": item.product_name,
                "category": item.category,
                "quantity": item.quantity,
                "unit_price": f"{item.price:.2f}",
                "line_total": f"{item.price * item.quantity:.2f}",
            }
            for item in order.items.all()
        ],
        "history": [
            {
                "from_status": change.from_status,
                "to_status": change.to_status,
                "reason": change.reason,
                # The role only: a customer does not see staff e-mails.
                "actor": change.actor.split(":", 1)[0],
                "changed_at": iso_utc(change.created_at),
            }
            for change in order.history.all()
        ],
        "created_at": iso_utc(order.created_at),
        "updated_at": iso_utc(order.updated_at),
    }


def order_counts_by_status() -> dict[str, int]:
    """How many orders are in each status (every status, 0 when none): one
    grouped count on the (status, created_at) index."""
    counts = dict.fromkeys(OrderStatus.values, 0)
    for row in Order.objects.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts
