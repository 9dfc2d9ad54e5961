"""The inventory consumer: a safety net under the create-order saga.

- order.confirmed: the reservation is committed (a sale, which counts in
  the best-selling order), if the saga has not done it yet.
- order.cancelled: stock still held for the order is released, or, if it
  was sold (a confirmed order), returned.
Every call is idempotent, so the saga and this consumer may both make it.
"""

from apps.core.messaging.consumers import Event
from apps.products.interface import (
    ReservationConflict,
    ReservationNotFound,
    commit_stock,
    release_stock,
    return_stock,
)


def inventory_handle(event: Event) -> None:
    order_ref = event.data["order_id"]
    if event.event_type == "order.confirmed":
        try:
            commit_stock(order_ref=order_ref)
        except (ReservationNotFound, ReservationConflict):
            pass  # nothing held for it, or already given back: no sale
    elif event.event_type == "order.cancelled":
        try:
            release_stock(order_ref=order_ref)  # still held: give it back
        except ReservationConflict:
            try:
                return_stock(order_ref=order_ref)  # sold: return it
            except ReservationConflict:
                pass  # neither held nor sold any more: nothing to give back
