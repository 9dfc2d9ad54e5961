"""The create-order saga: a PENDING order becomes CONFIRMED or CANCELLED.

Steps (each compensation undoes its step, and tolerates a step that never
took effect, since a failed step is compensated too):

0. order: the order is still PENDING. Compensation: cancel it with the
   reason the customer sees (the last compensation to run).
1. reserve_stock (catalog). Compensation: release the reservation, or give
   the stock back when it was already sold.
2. charge_payment (payment provider). Compensation: refund the charge made
   under the step's idempotency key, if there is one.
3. create_shipment (shipping provider). Compensation: cancel it.
4. confirm_order: PENDING -> CONFIRMED, then commit the reservation.

Provider calls go through the gateway's resilience policy (timeout,
retries of these idempotent calls, a circuit breaker per provider).
"""

from typing import Any

from apps.gateway.interface import resilient_call
from apps.orders import interface as orders
from apps.products import interface as catalog
from sagas.engine import (
    SagaDefinition,
    Step,
    StepContext,
    StepFailed,
    TransientStepError,
    register,
)
from sagas.providers import ProviderError, payment_provider, shipping_provider

SAGA_TYPE = "create_order"
PAYMENT = "payment"
SHIPPING = "shipping"


# -- 0. the order -------------------------------------------------------------


def check_order(ctx: StepContext) -> None:
    order = orders.get_order(ctx.order_id)
    if order.status != "pending":
        raise StepFailed(f"The order is {order.status}")


def cancel_order(ctx: StepContext) -> None:
    try:
        orders.cancel_order(
            order_id=ctx.order_id, reason=ctx.reason or "Order cancelled"
        )
    except orders.IllegalTransition as exc:
        if exc.current_status != "cancelled":
            raise StepFailed(f"The order is {exc.current_status}") from None


# -- 1. stock -----------------------------------------------------------------


def reserve_stock(ctx: StepContext) -> None:
    order = orders.get_order(ctx.order_id)
    try:
        catalog.reserve_stock(
            order_ref=str(order.id),
            items=[
                catalog.ReservationItem(item.product_id, item.quantity)
                for item in order.items
            ],
        )
    except catalog.InsufficientStock as exc:
        names = {item.product_id: item.product_name for item in order.items}
        short = ", ".join(names.get(s.product_id, s.product_id) for s in exc.shortages)
        raise StepFailed(f"Out of stock: {short}") from None
    except catalog.ReservationConflict as exc:
        # Another attempt is still taking stock (or was interrupted and the
        # catalog's sweeper repairs it): try again later.
        raise TransientStepError(str(exc)) from None


def release_stock(ctx: StepContext) -> None:
    try:
        catalog.release_stock(order_ref=str(ctx.order_id))
    except catalog.ReservationConflict:
        # Sold already (a confirmed order cancelled): give the stock back.
        catalog.return_stock(order_ref=str(ctx.order_id))


# -- 2. payment ---------------------------------------------------------------


def charge_payment(ctx: StepContext) -> dict[str, Any]:
    order = orders.get_order(ctx.order_id)
    try:
        charge = resilient_call(
            PAYMENT,
            payment_provider().charge,
            idempotent=True,
            idempotency_key=ctx.key("charge_payment"),
            amount=order.total_amount,
            token=order.payment_method,
        )
    except ProviderError as exc:
        raise StepFailed(
            "Payment declined" if exc.code == "card_declined" else "Payment failed"
        ) from None
    return {"charge_id": charge.id}


def refund_payment(ctx: StepContext) -> None:
    provider = payment_provider()
    charge = resilient_call(
        PAYMENT,
        provider.find_charge,
        idempotent=True,
        idempotency_key=ctx.key("charge_payment"),
    )
    if charge is not None and charge.status == "captured":
        resilient_call(
            PAYMENT,
            provider.refund,
            idempotent=True,
            charge_id=charge.id,
            idempotency_key=ctx.key("refund_payment"),
        )


# -- 3. shipment --------------------------------------------------------------


def create_shipment(ctx: StepContext) -> dict[str, Any]:
    order = orders.get_order(ctx.order_id)
    snapshot = {
        "id": str(order.id),
        "user_id": str(order.user_id),
        "payment_method": order.payment_method,
        "items": [
            {"product_id": i.product_id, "quantity": i.quantity} for i in order.items
        ],
    }
    try:
        shipment = resilient_call(
            SHIPPING,
            shipping_provider().create_shipment,
            idempotent=True,
            idempotency_key=ctx.key("create_shipment"),
            order=snapshot,
        )
    except ProviderError:
        raise StepFailed("Shipping unavailable") from None
    return {"shipment_id": shipment.id}


def cancel_shipment(ctx: StepContext) -> None:
    provider = shipping_provider()
    shipment = resilient_call(
        SHIPPING,
        provider.find_shipment,
        idempotent=True,
        idempotency_key=ctx.key("create_shipment"),
    )
    if shipment is not None and shipment.status != "cancelled":
        resilient_call(
            SHIPPING, provider.cancel, idempotent=True, shipment_id=shipment.id
        )


# -- 4. confirmation ------------------------------------------------------------


def confirm_order(ctx: StepContext) -> None:
    try:
        orders.confirm_order(order_id=ctx.order_id)
    except orders.IllegalTransition as exc:
        if exc.current_status != "confirmed":  # "confirmed": a retry
            raise StepFailed(f"The order is {exc.current_status}") from None
    try:
        catalog.commit_stock(order_ref=str(ctx.order_id))
    except (catalog.ReservationConflict, catalog.ReservationNotFound):
        raise StepFailed("Your items are no longer reserved") from None


CREATE_ORDER = register(
    SagaDefinition(
        saga_type=SAGA_TYPE,
        steps=(
            Step("order", check_order, cancel_order),
            Step(
                "reserve_stock",
                reserve_stock,
                release_stock,
                failure_reason="We could not reserve your items",
            ),
            Step(
                "charge_payment",
                charge_payment,
                refund_payment,
                failure_reason="Payment failed",
            ),
            Step(
                "create_shipment",
                create_shipment,
                cancel_shipment,
                failure_reason="Shipping unavailable",
            ),
            Step("confirm_order", confirm_order, None),
        ),
    )
)
