"""The sagas' metrics: outcomes and durations counted where the saga ends (a
real Celery worker, which serves its own metrics on a port), and stuck
sagas measured by the web's /metrics."""

import os
import uuid
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

import conftest as root_conftest
from sagas.engine import definition_of
from sagas.models import Saga, SagaStatus, SagaStepLog
from sagas.tests.conftest import FAST, SAGA_CONSUMER, databases
from tests.polling import poll
from tests.prometheus import samples, scrape_url, value
from tests.servers import free_port

pytestmark = databases

STEP_TASK = "sagas.tasks.saga_step_task"


@pytest.fixture
def metered_worker(start_worker, tmp_path):
    """A real worker that runs the saga steps and serves its metrics on a
    port of its own, in multiprocess mode as in production."""
    queue = f"saga-{os.urandom(6).hex()}"
    port = free_port()
    directory = tmp_path / "prometheus"
    directory.mkdir()
    worker = root_conftest.WorkerProcess(
        queue,
        {
            "DJANGO_SETTINGS_MODULE": "sagas.tests.worker_settings",
            "SAGA_TASK_QUEUE": queue,
            "CELERY_METRICS_PORT": str(port),
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
        },
    )
    try:
        worker.wait_ready()
        worker.queue, worker.metrics_url = queue, f"http://127.0.0.1:{port}/metrics"
        yield worker
    finally:
        worker.stop()


def test_a_worker_exports_task_counts_and_the_saga_outcome(
    metered_worker, product, place
):
    product("widget", stock=10)

    with override_settings(
        EVENTS_PUBLISHER="inline",
        EVENT_CONSUMERS=SAGA_CONSUMER,
        EVENT_CONSUMERS_ENABLED=["*"],
        SAGA_TASK_QUEUE=metered_worker.queue,
        **FAST,
    ):
        order = place([("widget", 2)])

    def outcome():
        found = scrape_url(metered_worker.metrics_url)
        done = value(
            found, "shop_saga_outcomes_total", saga="create_order", outcome="completed"
        )
        return found if done else None

    found = poll(outcome, timeout=60, message="the saga's outcome on the worker")
    saga = Saga.objects.get(order_id=order.id)
    assert saga.status == SagaStatus.COMPLETED
    steps = SagaStepLog.objects.filter(saga=saga, status="done").count()
    assert steps == len(definition_of("create_order").steps)
    assert value(found, "shop_celery_tasks_total", task=STEP_TASK, state="success") == (
        steps
    )
    assert value(found, "shop_celery_task_duration_seconds_count", task=STEP_TASK) == (
        steps
    )
    outcomes = "shop_saga_outcomes_total"
    assert value(found, outcomes, saga="create_order", outcome="completed") == 1
    assert value(found, "shop_saga_duration_seconds_count", saga="create_order") == 1
    assert value(found, "shop_saga_duration_seconds_sum", saga="create_order") > 0


def test_a_compensated_saga_is_counted_as_failed(inline, product, place, client):
    def failed(found):
        return (
            value(
                found, "shop_saga_outcomes_total", saga="create_order", outcome="failed"
            )
            or 0
        )

    before = samples(client.get("/metrics").content.decode())
    product("widget", stock=10)

    order = place([("widget", 1)], payment_method="tok_decline")
    after = samples(client.get("/metrics").content.decode())

    assert Saga.objects.get(order_id=order.id).status == SagaStatus.FAILED
    assert failed(after) - failed(before) == 1


def test_stuck_sagas_are_counted(client, settings):
    settings.METRICS_STATE_CACHE_SECONDS = 0
    settings.SAGA_STUCK_MINUTES = 10
    now = timezone.now()

    def saga(status, lease, updated_minutes_ago=0):
        Saga.objects.create(
            saga_type="create_order",
            order_id=uuid.uuid4(),
            status=status,
            lease_expires_at=None if lease is None else now + timedelta(seconds=lease),
            updated_at=now - timedelta(minutes=updated_minutes_ago),
        )

    saga(SagaStatus.RUNNING, lease=60)  # a worker runs it
    saga(SagaStatus.COMPLETED, lease=None)  # done
    saga(SagaStatus.RUNNING, lease=-5)  # its worker died
    saga(SagaStatus.COMPENSATING, lease=None)  # a compensation gave up
    saga(SagaStatus.RUNNING, lease=600, updated_minutes_ago=11)  # no progress

    found = samples(client.get("/metrics").content.decode())

    assert value(found, "shop_sagas_stuck") == 3
