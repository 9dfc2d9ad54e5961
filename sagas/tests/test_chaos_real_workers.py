"""A randomised run of 500 orders on the real path, with failures injected
at every step (sagas.chaos): orders placed through the orders interface
write ``order.created`` to the outbox; a relay process publishes it to
RabbitMQ; two Celery worker processes run the saga consumer and every
step. Then every invariant of the run holds."""

import os

import pytest
from django.conf import settings
from kombu import Connection

import conftest as root_conftest
from sagas.chaos import CUSTOMER_CANCEL_REASON, ChaosOptions, chaos_run
from sagas.tests.conftest import databases
from tests import servers

# The event tests' exchange per test (and its queues, deleted after).
from tests.events.conftest import DELAYS_MS, events_exchange  # noqa: F401
from tests.polling import poll

pytestmark = databases

# Small figures, so that retries, timeouts and backoffs take milliseconds.
FAST_ENV = {
    "EVENTS_RETRY_DELAYS_MS": ",".join(map(str, DELAYS_MS)),
    "SAGA_RETRY_BACKOFF_SECONDS": "0.05",
    "SAGA_RETRY_BACKOFF_MAX_SECONDS": "0.4",
    "RESILIENCE_RETRY_DELAYS_MS": "1,2,4",
    "RESILIENCE_TIMEOUT_SECONDS": "0.05",
    "RESILIENCE_TOTAL_TIMEOUT_SECONDS": "0.5",
    # Every failure here is injected per order: a breaker opened by them
    # would cancel the healthy orders too, which is not what is checked.
    "CIRCUIT_BREAKER_FAIL_MAX": "1000000",
}

# Plenty of two products, little of two: late orders for those are short
# when their sagas reserve (or already when they are placed).
STOCK = {"chaos-a": 1000, "chaos-b": 1000, "chaos-c": 450, "chaos-d": 300}

OPTIONS = ChaosOptions(
    orders=500,
    decline_rate=0.08,
    transient_rate=0.15,
    timeout_rate=0.01,
    charge_fail_rate=0.03,
    ship_fail_rate=0.05,
    cancel_rate=0.04,
    max_quantity=3,
    # Generous for a shared two-core machine; a run takes well under it.
    deadline=150,
    seed=20261128,
)


@pytest.fixture
def real_path(transactional_db, events_exchange):  # noqa: F811
    """The relay process and two worker processes that share one task
    queue and run the saga consumer (with the inventory consumer, its
    safety net), all on this test's exchange."""
    queue = f"saga-chaos-{os.urandom(4).hex()}"
    env = {"EVENTS_EXCHANGE": events_exchange, "SAGA_TASK_QUEUE": queue, **FAST_ENV}
    relay = servers.RelayProcess({**env, "OUTBOX_RELAY_POLL_SECONDS": "0.2"})
    workers = [
        root_conftest.WorkerProcess(
            queue,
            {**env, "EVENT_CONSUMERS_ENABLED": "order_saga,inventory"},
            name=f"{queue}-{n}",
        )
        for n in (1, 2)
    ]
    try:
        for worker in workers:
            worker.wait_ready()
        poll(
            lambda: "Outbox relay running." in relay.output(),
            message="the relay to start",
        )
        yield workers
    finally:
        # Each stops within its event loop's poll timeout: stop them together.
        for process in [*(w.process for w in workers), relay.process]:
            process.terminate()
        for worker in workers:
            worker.stop()
        relay.stop()
        with Connection(settings.CELERY_BROKER_URL) as connection:
            # Celery declared both for the tasks.
            connection.default_channel.queue_delete(queue)
            connection.default_channel.exchange_delete(queue)


def test_500_orders_with_failures_at_every_step_keep_every_invariant(
    real_path, product, customer
):
    for pid, units in STOCK.items():
        product(pid, stock=units)

    report = chaos_run(user_id=customer.id, product_ids=list(STOCK), options=OPTIONS)
    print("\n".join(report.lines()))  # shown with -rP or on a failure

    assert report.ok, "\n".join(report.lines())
    assert report.placed == 500, report.lines()
    # Every kind of failure was met, and many orders still went through.
    assert {
        "Payment declined",  # tok_decline
        "Payment failed",  # tok_charge_then_fail, tok_timeout
        "Shipping unavailable",  # tok_ship_fail
        "Out of stock",  # short when reserved
        CUSTOMER_CANCEL_REASON,
    } <= set(report.cancel_reasons), report.lines()
    assert report.outcomes["confirmed"] > report.placed // 4, report.lines()
    # Both workers ran steps.
    for worker in real_path:
        assert "saga_step_task" in worker.output()
