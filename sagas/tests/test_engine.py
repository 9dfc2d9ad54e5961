"""Engine behaviour: idempotent redelivery, cancels, the sweeper, operator
actions (direct calls and eager tasks on the real databases)."""

from datetime import timedelta

from django.utils import timezone

from apps.orders.services import order_cancel
from sagas import engine
from sagas.models import Saga, SagaStepLog, SandboxCharge, SandboxShipment
from sagas.tasks import saga_step_task
from sagas.tests.conftest import databases, reservation_status, stock

pytestmark = databases


def test_redelivered_step_task_has_no_second_effect(inline, product, place):
    product("widget", stock=10)
    order = place([("widget", 2)])
    saga = Saga.objects.get(order_id=order.id)

    for index, step in enumerate(("reserve_stock", "charge_payment")):
        result = saga_step_task.apply(args=(str(saga.id), index + 1, "forward"))
        assert result.get() == "skipped", step

    assert SandboxCharge.objects.count() == 1
    assert stock("widget") == (8, 0, 2)
    assert SagaStepLog.objects.get(step="charge_payment").attempts == 1


def test_cancelling_a_confirmed_order_refunds_cancels_shipment_returns_stock(
    inline, product, place
):
    product("widget", stock=10)
    order = place([("widget", 3)])
    order.refresh_from_db()
    assert order.status == "confirmed"

    order_cancel(order_id=order.id, actor="customer", reason="Changed my mind")

    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("cancelled", "Changed my mind")
    assert SandboxCharge.objects.get().status == "refunded"
    assert SandboxShipment.objects.get().status == "cancelled"
    assert stock("widget") == (10, 0, 0)
    assert reservation_status(order.id) == "returned"
    saga = Saga.objects.get(order_id=order.id)
    assert (saga.status, saga.failure_reason) == ("failed", "Changed my mind")


def test_cancel_while_no_worker_holds_the_saga_compensates_at_once(
    inline, product, place
):
    product("widget", stock=10)
    order = place([("widget", 1)])
    saga = Saga.objects.get(order_id=order.id)
    # As if the saga waited for its retry of the charge step.
    Saga.objects.filter(pk=saga.pk).update(
        status="running", current_step=2, lease_owner="",
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )  # fmt: skip

    engine.saga_compensate(saga_id=saga.id, reason="Cancelled by staff")

    saga.refresh_from_db()
    assert saga.status == "failed"
    assert SandboxCharge.objects.get().status == "refunded"  # the step's own


def test_sweeper_requeues_a_saga_whose_lease_ran_out(inline, product, place):
    product("widget", stock=10)
    order = place([("widget", 1)], payment_method="tok_decline")
    saga = Saga.objects.get(order_id=order.id)
    # A worker died holding the charge step: its lease ran out.
    Saga.objects.filter(pk=saga.pk).update(
        status="running", current_step=2, lease_owner="dead-task",
        lease_expires_at=timezone.now() - timedelta(seconds=1),
        failure_reason="",
    )  # fmt: skip
    fresh = Saga.objects.create(
        saga_type="create_order", order_id=order.user_id,  # another saga
        status="running", lease_owner="live-task",
        lease_expires_at=timezone.now() + timedelta(minutes=1),
    )  # fmt: skip

    assert engine.saga_sweep() == 1

    saga.refresh_from_db()
    fresh.refresh_from_db()
    assert saga.status == "failed"  # re-ran the charge: declined, compensated
    assert (fresh.status, fresh.lease_owner) == ("running", "live-task")


def test_transition_table_refuses_to_reopen_a_failed_saga():
    saga = Saga(status="failed")
    try:
        engine._transition(saga, "running")
    except engine.IllegalSagaTransition as exc:
        assert exc.current_status == "failed"
    else:
        raise AssertionError("a failed saga was reopened")
