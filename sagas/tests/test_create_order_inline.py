"""The create-order saga on the embedded default: events applied in-process,
tasks run eagerly, every outcome visible when the order request returns."""

from apps.core.messaging.relay import relay_inline
from apps.orders.messaging_models import OutboxEvent
from apps.products.models import Product
from sagas.models import (
    Saga,
    SagaStepLog,
    SandboxCharge,
    SandboxShipment,
)
from sagas.tests.conftest import databases, inline_events, reservation_status, stock

pytestmark = databases


def test_happy_path_confirms_order_commits_stock_and_captures_charge(
    inline, product, place
):
    product("widget", stock=10, price="25.00")

    order = place([("widget", 2)])

    order.refresh_from_db()
    assert order.status == "confirmed"
    assert stock("widget") == (8, 0, 2)
    assert reservation_status(order.id) == "committed"
    charge = SandboxCharge.objects.get()
    assert (charge.amount, charge.status) == (order.total_amount, "captured")
    assert SandboxShipment.objects.get().status == "created"
    saga = Saga.objects.get(order_id=order.id)
    assert saga.status == "completed"
    assert list(
        SagaStepLog.objects.filter(saga=saga).values_list("step", "kind", "status")
    ) == [
        ("order", "forward", "done"),
        ("reserve_stock", "forward", "done"),
        ("charge_payment", "forward", "done"),
        ("create_shipment", "forward", "done"),
        ("confirm_order", "forward", "done"),
    ]


def test_decline_cancels_order_releases_stock_and_takes_no_money(
    inline, product, place
):
    product("widget", stock=10)

    order = place([("widget", 3)], payment_method="tok_decline")

    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("cancelled", "Payment declined")
    assert stock("widget") == (10, 0, 0)
    assert reservation_status(order.id) == "released"
    assert not SandboxCharge.objects.exists()
    assert not SandboxShipment.objects.exists()
    assert Saga.objects.get(order_id=order.id).status == "failed"


def test_stock_gone_before_the_saga_runs_cancels_naming_the_product(
    product, place, customer
):
    product("widget", stock=5)
    order = place([("widget", 5)])  # events wait in the outbox
    Product.objects.filter(pk="widget").update(stock=4)  # sold elsewhere

    with inline_events():
        relay_inline(OutboxEvent)

    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (
        "cancelled",
        "Out of stock: Product widget",
    )
    assert stock("widget") == (4, 0, 0)
    assert reservation_status(order.id) is None
    assert not SandboxCharge.objects.exists()


def test_shipping_failure_after_charge_refunds_and_releases_stock(
    inline, product, place
):
    product("widget", stock=10)

    order = place([("widget", 1)], payment_method="tok_ship_fail")

    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == (
        "cancelled",
        "Shipping unavailable",
    )
    charge = SandboxCharge.objects.get()
    assert charge.status == "refunded"
    assert charge.refunds.count() == 1
    assert stock("widget") == (10, 0, 0)
    assert not SandboxShipment.objects.exists()


def test_charge_then_fail_charges_once_and_refunds(inline, product, place):
    product("widget", stock=10)

    order = place([("widget", 1)], payment_method="tok_charge_then_fail")

    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("cancelled", "Payment failed")
    charge = SandboxCharge.objects.get()  # one charge across every retry
    assert charge.status == "refunded"
    assert charge.refunds.count() == 1
    log = SagaStepLog.objects.get(step="charge_payment", kind="forward")
    assert (log.status, log.attempts) == ("failed", 5)
    assert stock("widget") == (10, 0, 0)


def test_transient_failures_are_retried_until_the_charge_succeeds(
    inline, product, place
):
    product("widget", stock=10)

    # Fails 5 times: the policy's 4 attempts of the first task, then once more.
    order = place([("widget", 1)], payment_method="tok_transient")

    order.refresh_from_db()
    assert order.status == "confirmed"
    assert SandboxCharge.objects.get().status == "captured"
    log = SagaStepLog.objects.get(step="charge_payment", kind="forward")
    assert (log.status, log.attempts) == ("done", 2)
    assert "503" in log.last_error


def test_timeouts_exhaust_attempts_and_cancel_the_order(inline, product, place):
    product("widget", stock=10)

    order = place([("widget", 1)], payment_method="tok_timeout")

    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("cancelled", "Payment failed")
    assert not SandboxCharge.objects.exists()
    assert stock("widget") == (10, 0, 0)
    log = SagaStepLog.objects.get(step="charge_payment", kind="forward")
    assert "CallTimeout" in log.last_error
