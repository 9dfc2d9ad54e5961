"""The saga consumer: order events start and stop create-order sagas.

Bound to ``order.*`` (the inbox applies an order's events in sequence, so
the consumer sees them all) and acts on two:
- ``order.created``: the saga of the order starts (once per order);
- ``order.cancelled``: a cancel the saga did not make (the customer's or
  staff's) makes it compensate what it did: a running saga stops its
  forward steps, a completed one (a confirmed order) refunds, cancels the
  shipment and gives the stock back.
Runs inside the inbox transaction on the orders database; the first task is
queued when it commits.
"""

from uuid import UUID

from apps.core.messaging.consumers import Event
from sagas import engine
from sagas.create_order import SAGA_TYPE
from sagas.models import Saga


def order_saga_handle(event: Event) -> None:
    order_id = UUID(event.aggregate_id)
    if event.event_type == "order.created":
        engine.saga_start(saga_type=SAGA_TYPE, order_id=order_id)
    elif event.event_type == "order.cancelled":
        saga = Saga.objects.filter(saga_type=SAGA_TYPE, order_id=order_id).first()
        if saga is not None:
            engine.saga_compensate(
                saga_id=saga.id, reason=event.data.get("reason") or "Order cancelled"
            )
