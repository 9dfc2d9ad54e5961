"""Fixtures for saga tests: products, customers, orders placed through the
orders service, and the two ways sagas run:

- ``inline``: the embedded default (``make run``): events are applied
  in-process as each transaction commits and Celery tasks run eagerly, so
  the saga has finished when ``order_place`` returns;
- ``saga_worker``: a real Celery worker process on RabbitMQ runs the steps;
  the saga consumer runs in the test process (inline events) and queues the
  first task on the worker's queue.
"""

from contextlib import contextmanager
from decimal import Decimal

import pytest
from django.test import override_settings

from apps.orders.services import order_place
from apps.products import interface as catalog
from apps.products.models import Product, StockReservation

SAGA_CONSUMER = {
    "order_saga": {
        "handler": "sagas.consumers.order_saga_handle",
        "inbox": "sagas.InboxEntry",
        "bindings": ["order.*"],
    }
}

# Small figures so that failure paths take milliseconds.
FAST = {
    "SAGA_RETRY_BACKOFF_SECONDS": 0.05,
    "RESILIENCE_RETRY_DELAYS_MS": [1, 2, 4],
    "RESILIENCE_TIMEOUT_SECONDS": 0.2,
    "CIRCUIT_BREAKER_FAIL_MAX": 1000,
}

databases = pytest.mark.django_db(
    transaction=True, databases=["default", "orders", "catalog"]
)


@contextmanager
def inline_events():
    """Events inline, tasks eager: the embedded default."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        with override_settings(
            EVENTS_PUBLISHER="inline",
            EVENT_CONSUMERS=SAGA_CONSUMER,
            EVENT_CONSUMERS_ENABLED=["*"],
            **FAST,
        ):
            yield
    finally:
        app.conf.task_always_eager = before


@pytest.fixture
def inline():
    with inline_events():
        yield


@pytest.fixture
def product(db):
    def make(pid="widget", *, stock=10, price="25.00") -> Product:
        return Product.objects.create(
            id=pid, name=f"Product {pid}", price=Decimal(price), stock=stock,
            category="Misc",
        )  # fmt: skip

    return make


@pytest.fixture
def place(customer):
    def make(items, payment_method=""):
        return order_place(
            user_id=customer.id, items=items, payment_method=payment_method
        )

    return make


def stock(pid: str) -> tuple[int, int, int]:
    """(available, held, sold) of a product, as the catalog counts them."""
    level = catalog.stock_levels([pid])[pid]
    return level.available, level.held, level.sold


def reservation_status(order_id) -> str | None:
    r = StockReservation.objects.filter(order_ref=str(order_id)).first()
    return r.status if r else None
