"""/metrics: request, database and cache metrics, the system's own, and who
may read them. The web process here is the test process (one process, no
multiprocess directory); test_metrics_processes.py runs real servers."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import override_settings
from django.utils import timezone
from kombu import Connection

from apps.core import metrics
from apps.core.messaging import topology
from apps.gateway import resilience
from apps.gateway.resilience import CircuitOpen, Policy
from apps.orders.messaging_models import OutboxEvent
from apps.orders.models import Order
from tests.prometheus import samples, value

ALL_DATABASES = pytest.mark.django_db(databases=["default", "orders", "catalog"])


@pytest.fixture(autouse=True)
def fresh_state(settings):
    # Every scrape measures the databases and the broker again.
    settings.METRICS_STATE_CACHE_SECONDS = 0


def scrape(client, **extra) -> dict:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return samples(response.content.decode())


def responses(found, status, view, method="GET") -> float:
    name = "django_http_responses_total_by_status_view_method_total"
    return value(found, name, status=status, view=view, method=method) or 0


def latency_count(found, view, method="GET") -> float:
    name = "django_http_requests_latency_seconds_by_view_method_bucket"
    return value(found, name, view=view, method=method, le="+Inf") or 0


def test_requests_are_counted_by_view_status_and_method(client):
    before = scrape(client)

    for _ in range(3):
        assert client.get("/health/live").status_code == 200
    assert client.post("/health/live").status_code == 405
    assert client.get("/no/such/page").status_code == 404
    after = scrape(client)

    assert (
        responses(after, "200", "health-live") - responses(before, "200", "health-live")
        == 3
    )
    assert (
        responses(after, "405", "health-live", "POST")
        - responses(before, "405", "health-live", "POST")
        == 1
    )
    assert (
        latency_count(after, "health-live") - latency_count(before, "health-live") == 3
    )
    assert (
        responses(after, "404", "<unnamed view>")
        - responses(before, "404", "<unnamed view>")
        == 1
    )


@ALL_DATABASES
def test_database_queries_and_cache_reads_are_counted(client):
    def queries(found):
        name = "django_db_execute_total"
        return value(found, name, alias="orders", vendor="postgresql") or 0

    def cache_reads(found, kind):
        return value(found, f"django_cache_get_{kind}total", backend="redis") or 0

    key = f"metrics-test:{uuid.uuid4().hex}"
    before = scrape(client)

    with connections["orders"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.execute("SELECT 2")
    assert cache.get(key) is None
    cache.set(key, 0, timeout=30)
    assert cache.get(key) == 0  # a falsy value is a hit, and returned
    after = scrape(client)

    # The scrape's own queries (orders by status, the outbox) count too.
    assert queries(after) - queries(before) >= 2
    assert cache_reads(after, "") - cache_reads(before, "") == 2
    assert cache_reads(after, "hits_") - cache_reads(before, "hits_") == 1
    assert cache_reads(after, "misses_") - cache_reads(before, "misses_") == 1


@pytest.mark.parametrize(
    "peer, headers, allowed",
    [
        ("127.0.0.1", {}, True),
        ("10.1.2.3", {}, True),
        ("192.168.0.9", {}, True),
        ("203.0.113.5", {}, False),
        # Through a proxy (an Ingress): from outside, whatever the peer.
        ("10.1.2.3", {"HTTP_X_FORWARDED_FOR": "203.0.113.5"}, False),
        ("127.0.0.1", {"HTTP_FORWARDED": "for=203.0.113.5"}, False),
    ],
)
def test_metrics_are_served_to_the_private_network_only(client, peer, headers, allowed):
    response = client.get("/metrics", REMOTE_ADDR=peer, **headers)

    if allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "metrics_forbidden"
        assert b"django_http" not in response.content


def test_a_bearer_token_opens_metrics_from_anywhere(client, settings):
    settings.METRICS_BEARER_TOKEN = "s3cret-scrape-token"
    outside = {"REMOTE_ADDR": "203.0.113.5", "HTTP_X_FORWARDED_FOR": "203.0.113.5"}

    granted = client.get(
        "/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token", **outside
    )
    refused = client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong", **outside)

    assert granted.status_code == 200
    assert b"django_http_responses_total_by_status_view_method_total" in (
        granted.content
    )
    assert refused.status_code == 403


@ALL_DATABASES
def test_readiness_checks_are_exported_after_each_probe(client):
    assert client.get("/health/ready").status_code == 200
    found = scrape(client)
    for check in ("database:default", "database:orders", "cache", "broker"):
        assert value(found, "shop_readiness_ok", check=check) == 1

    with override_settings(CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:1//"):
        assert client.get("/health/ready").status_code == 503
    found = scrape(client)
    assert value(found, "shop_readiness_ok", check="broker") == 0
    assert value(found, "shop_readiness_ok", check="cache") == 1


@ALL_DATABASES
def test_orders_by_status_reflect_the_rows(client):
    for status in ("pending", "pending", "confirmed", "cancelled"):
        Order.objects.create(
            user_id=uuid.uuid4(), status=status, total_amount=Decimal("9.99")
        )

    found = scrape(client)

    assert value(found, "shop_orders", status="pending") == 2
    assert value(found, "shop_orders", status="confirmed") == 1
    assert value(found, "shop_orders", status="cancelled") == 1
    # Every status has a series, 0 when no order is in it.
    assert value(found, "shop_orders", status="shipped") == 0
    assert value(found, "shop_orders", status="completed") == 0


@ALL_DATABASES
def test_state_is_measured_at_most_once_per_cache_period(client, settings):
    settings.METRICS_STATE_CACHE_SECONDS = 300
    scrape(client)  # measured now (or kept from an earlier scrape)
    Order.objects.create(
        user_id=uuid.uuid4(), status="shipped", total_amount=Decimal("1.00")
    )
    first = scrape(client)

    settings.METRICS_STATE_CACHE_SECONDS = 0
    second = scrape(client)

    assert value(first, "shop_orders", status="shipped") == 0
    assert value(second, "shop_orders", status="shipped") == 1


@ALL_DATABASES
def test_outbox_backlog_and_age_of_the_oldest_pending_event(client):
    now = timezone.now()
    aggregate = str(uuid.uuid4())
    for sequence, (age, published) in enumerate(
        [(300, True), (120, False), (5, False)], start=1
    ):
        OutboxEvent.objects.create(
            aggregate_id=aggregate,
            sequence=sequence,
            event_type="order.created",
            envelope={},
            created_at=now - timedelta(seconds=age),
            published_at=now if published else None,
        )

    found = scrape(client)

    assert value(found, "shop_outbox_pending_events") == 2
    age = value(found, "shop_outbox_oldest_pending_age_seconds")
    assert 120 <= age < 180


@ALL_DATABASES
def test_an_empty_outbox_has_no_backlog(client):
    found = scrape(client)

    assert value(found, "shop_outbox_pending_events") == 0
    assert value(found, "shop_outbox_oldest_pending_age_seconds") == 0


def test_breaker_state_flips_to_open_when_the_circuit_opens(client):
    destination = f"test-metrics-{uuid.uuid4().hex[:8]}"
    policy = Policy(timeout=0.5, total_timeout=2.0, retry_delays=(), breaker_fail_max=2)

    def down(*, timeout):
        raise ConnectionError("refused")

    def state(found):
        return value(found, "shop_circuit_breaker_state", destination=destination)

    with pytest.raises(ConnectionError):
        resilience.call(destination, down, idempotent=False, policy=policy)
    closed = scrape(client)
    with pytest.raises(CircuitOpen):
        resilience.call(destination, down, idempotent=False, policy=policy)
    opened = scrape(client)

    assert state(closed) == 0
    assert state(opened) == 1


def test_rate_limit_rejections_are_counted_by_limit(client):
    name = "shop_rate_limit_rejections_total"
    before = value(scrape(client), name, limit="login") or 0

    metrics.rate_limit_rejected("login")
    metrics.RATE_LIMIT_REJECTIONS.labels(limit="login").inc()

    assert value(scrape(client), name, limit="login") == before + 2


@pytest.fixture
def isolated_exchange(settings):
    """Fresh queue names for this test; its dead-letter queue deleted after."""
    name = f"test-{uuid.uuid4().hex[:10]}.events"
    with override_settings(EVENTS_EXCHANGE=name, EVENTS_PUBLISHER="amqp"):
        yield name
        with Connection(settings.EVENTS_BROKER_URL) as connection:
            channel = connection.channel()
            for spec in topology.consumer_specs().values():
                channel.queue_delete(topology.dead_letter_queue(spec).name)
            channel.close()


@ALL_DATABASES
def test_dead_letters_are_counted_per_queue(client, isolated_exchange, settings):
    spec = topology.consumer_specs()["notification"]
    dlq = topology.dead_letter_queue(spec)
    with topology.broker_connection() as connection:
        producer = connection.Producer()
        for n in range(2):
            producer.publish(
                {"n": n}, exchange="", routing_key=dlq.name, declare=[dlq],
                serializer="json", delivery_mode=2,
            )  # fmt: skip

    found = scrape(client)

    assert value(found, "shop_dead_letters", queue=dlq.name) == 2
    # The other consumers' dead-letter queues were never declared under
    # this exchange: no series, and none created by looking.
    dead_letter_queues = {
        dict(labels)["queue"] for name, labels in found if name == "shop_dead_letters"
    }
    assert dead_letter_queues == {dlq.name}


@ALL_DATABASES
def test_dead_letters_are_absent_while_the_broker_is_down(client):
    with override_settings(EVENTS_BROKER_URL="amqp://guest:guest@127.0.0.1:1//"):
        found = scrape(client)

    assert not [name for name, _ in found if name == "shop_dead_letters"]
    # The rest of the exposition is still served.
    assert value(found, "shop_outbox_pending_events") == 0
