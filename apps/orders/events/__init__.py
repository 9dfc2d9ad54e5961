"""Order events: built from an order, described by JSON schemas (tests check
every published event against them), written to the outbox in the caller's
transaction.

Every event carries a snapshot of the order (id, user, status, total,
items with names and categories), so that no consumer has to call back into
this context. Schemas: ``apps/orders/events/schemas/<type>.v<version>.json``.
"""

import json
from pathlib import Path
from typing import Literal

from apps.core.messaging import outbox
from apps.orders.messaging_models import OutboxEvent

SCHEMA_VERSION = 1

OrderEventType = Literal[
    "order.created",
    "order.confirmed",
    "order.shipped",
    "order.completed",
    "order.cancelled",
]
EVENT_TYPES: tuple[str, ...] = OrderEventType.__args__


def order_snapshot(order) -> dict:
    """The order as every event describes it (JSON-ready)."""
    return {
        "id": str(order.id),
        "user_id": str(order.user_id),
        "status": order.status,
        "total_amount": f"{order.total_amount:.2f}",
        "created_at": order.created_at.isoformat(),
        "items": [
            {
                "product_id": item.product_id,
                "name": item.product_name,
                "category": item.category,
                "quantity": item.quantity,
                "unit_price": f"{item.price:.2f}",
            }
            for item in order.items.all()
        ],
    }


def order_event_record(
    *,
    order,
    event_type: OrderEventType,
    previous_status: str | None = None,
    reason: str = "",
) -> OutboxEvent:
    """Append ``event_type`` for ``order`` to the outbox.

    Call inside the transaction that changed the order, with the order row
    locked (``select_for_update``), so that the event commits or rolls back
    with the change and events of one order are numbered without gaps.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown order event type {event_type!r}")
    data = {
        "order_id": str(order.id),
        "previous_status": previous_status,
        "reason": reason,
        "order": order_snapshot(order),
    }
    return outbox.outbox_append(
        OutboxEvent,
        aggregate_id=str(order.id),
        event_type=event_type,
        schema_version=SCHEMA_VERSION,
        data=data,
        # A new order's first event; the unique (order, sequence) pair
        # would refuse a second one.
        sequence=1 if event_type == "order.created" else None,
    )


SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


def event_schema(event_type: str, version: int = SCHEMA_VERSION) -> dict:
    """The JSON schema (draft 2020-12) of ``event_type`` at ``version``."""
    return json.loads((SCHEMA_DIR / f"{event_type}.v{version}.json").read_text())
