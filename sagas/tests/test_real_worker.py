"""The create-order saga with real Celery worker processes on RabbitMQ.

The test process places orders and applies order events in-process (the
saga consumer queues the first task on the worker's queue); the workers run
every step and chain the next ones through the broker.
"""

import os
import signal
from contextlib import contextmanager

import pytest
from django.test import override_settings

import conftest as root_conftest
from apps.orders.services import order_cancel
from sagas.models import Saga, SandboxCharge, SandboxShipment
from sagas.tests.conftest import (
    FAST,
    SAGA_CONSUMER,
    databases,
    reservation_status,
    stock,
)
from tests.polling import poll

pytestmark = databases


@contextmanager
def events_inline_tasks_to(queue: str):
    with override_settings(
        EVENTS_PUBLISHER="inline",
        EVENT_CONSUMERS=SAGA_CONSUMER,
        EVENT_CONSUMERS_ENABLED=["*"],
        SAGA_TASK_QUEUE=queue,
        **FAST,
    ):
        yield


@pytest.fixture
def saga_workers(start_worker):
    """Start worker processes that all listen on one queue."""
    queue = f"saga-{os.urandom(6).hex()}"
    workers = []

    def start(**env):
        worker = root_conftest.WorkerProcess(
            queue,
            {
                "DJANGO_SETTINGS_MODULE": "sagas.tests.worker_settings",
                "SAGA_TASK_QUEUE": queue,
                **env,
            },
        )
        workers.append(worker)
        worker.wait_ready()
        return worker

    start.queue = queue
    yield start
    for worker in workers:
        worker.stop()


def saga_status(order_id) -> str | None:
    saga = Saga.objects.filter(order_id=order_id).first()
    return saga.status if saga and saga.status in ("completed", "failed") else None


def test_happy_path_on_a_real_worker_ends_confirmed(saga_workers, product, place):
    saga_workers()
    product("widget", stock=10)

    with events_inline_tasks_to(saga_workers.queue):
        order = place([("widget", 2)])
    poll(lambda: saga_status(order.id), message="the saga to finish")

    order.refresh_from_db()
    assert order.status == "confirmed"
    assert stock("widget") == (8, 0, 2)
    assert SandboxCharge.objects.get().status == "captured"
    assert SandboxShipment.objects.get().status == "created"


def test_decline_on_a_real_worker_releases_stock(saga_workers, product, place):
    saga_workers()
    product("widget", stock=10)

    with events_inline_tasks_to(saga_workers.queue):
        order = place([("widget", 2)], payment_method="tok_decline")
    poll(lambda: saga_status(order.id), message="the saga to finish")

    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("cancelled", "Payment declined")
    assert stock("widget") == (10, 0, 0)
    assert not SandboxCharge.objects.exists()


def test_customer_cancel_mid_charge_is_honoured(saga_workers, product, place):
    saga_workers(SAGA_SANDBOX_SLOW_SECONDS="3")
    product("widget", stock=10)

    with events_inline_tasks_to(saga_workers.queue):
        order = place([("widget", 1)], payment_method="tok_slow")
        # The charge is taken; its answer takes 3 s.
        poll(SandboxCharge.objects.exists, message="the charge")
        order_cancel(order_id=order.id, actor="customer", reason="Changed my mind")
    poll(lambda: saga_status(order.id), message="the saga to finish")

    order.refresh_from_db()
    assert (order.status, order.cancel_reason) == ("cancelled", "Changed my mind")
    assert SandboxCharge.objects.get().status == "refunded"
    assert not SandboxShipment.objects.exists()
    assert stock("widget") == (10, 0, 0)
    assert reservation_status(order.id) == "released"


def test_worker_killed_mid_charge_is_replaced_without_double_effects(
    saga_workers, product, place
):
    doomed = saga_workers(SAGA_SANDBOX_SLOW_SECONDS="5")
    product("widget", stock=10)

    with events_inline_tasks_to(saga_workers.queue):
        order = place([("widget", 1)], payment_method="tok_slow")
    poll(SandboxCharge.objects.exists, message="the charge")
    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait()
    saga_workers(SAGA_SANDBOX_SLOW_SECONDS="0.5")  # takes the redelivery
    poll(lambda: saga_status(order.id), timeout=60, message="the saga to finish")

    order.refresh_from_db()
    assert order.status == "confirmed"
    assert SandboxCharge.objects.count() == 1
    assert SandboxCharge.objects.get().status == "captured"
    assert SandboxShipment.objects.count() == 1
    assert stock("widget") == (9, 0, 1)
    assert reservation_status(order.id) == "committed"


def test_an_open_payment_circuit_is_waited_out_and_the_order_confirmed(
    saga_workers, product, place
):
    """The payment provider's circuit is open (state shared through Redis)
    when the order arrives. Five quick attempts would be spent well before
    the circuit lets a trial call through; the saga waits for it instead,
    spending no attempt, and the order is confirmed."""
    import redis

    from apps.gateway import resilience

    redis_url = "redis://127.0.0.1:6379/4"
    breakers = redis.Redis.from_url(redis_url)
    breakers.delete(*breakers.keys("circuit:payment*") or ["none"])
    reset_seconds = "2"
    saga_workers(
        CIRCUIT_BREAKER_REDIS_URL=redis_url,
        CIRCUIT_BREAKER_RESET_SECONDS=reset_seconds,
        SAGA_CIRCUIT_RETRY_SECONDS="0.3",
    )
    product("widget", stock=10)
    with override_settings(
        CIRCUIT_BREAKER_REDIS_URL=redis_url,
        CIRCUIT_BREAKER_RESET_SECONDS=float(reset_seconds),
    ):
        resilience.circuit_breaker("payment", resilience.policy_from_settings()).open()
    try:
        with events_inline_tasks_to(saga_workers.queue):
            order = place([("widget", 1)])
        poll(lambda: saga_status(order.id), timeout=60, message="the saga to end")
    finally:
        breakers.delete(*breakers.keys("circuit:payment*") or ["none"])

    order.refresh_from_db()
    assert order.status == "confirmed", order.cancel_reason
    assert SandboxCharge.objects.get().status == "captured"
    charge_step = Saga.objects.get(order_id=order.id).steps.get(
        step="charge_payment", kind="forward"
    )
    assert charge_step.attempts == 1
    assert "CircuitOpen" in charge_step.last_error
