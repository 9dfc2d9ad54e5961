"""Consumer redeliveries (counted by the worker that runs the consumer, on
its metrics port) and dead letters (measured by the web's /metrics) with a
real worker on the real RabbitMQ."""

import pytest

from apps.core.messaging import relay, topology
from tests.polling import poll
from tests.prometheus import samples, scrape_url, value
from tests.servers import free_port

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "orders", "catalog"]
)


def test_retries_are_counted_as_redeliveries_and_the_dead_letter_is_seen(
    products, customer, auth_client, start_worker, consumer_env, client, settings
):  # fmt: skip
    settings.METRICS_STATE_CACHE_SECONDS = 0
    port = free_port()
    # No mail server: every notification attempt fails (3 attempts).
    start_worker({**consumer_env, "CELERY_METRICS_PORT": str(port)})
    response = auth_client(customer).post(
        "/api/v1/orders",
        {"items": [{"product_id": "mug", "quantity": 1}]},
        format="json",
    )
    assert response.status_code == 201
    publisher = relay.AmqpPublisher()
    try:
        relay.relay_publish_all(publisher=publisher)
    finally:
        publisher.close()
    notification = topology.consumer_specs()["notification"]
    dlq = topology.dead_letter_queue(notification).name

    def dead_letters():
        found = samples(client.get("/metrics").content.decode())
        return value(found, "shop_dead_letters", queue=dlq)

    assert poll(dead_letters, timeout=60, message="the dead letter") == 1
    worker = scrape_url(f"http://127.0.0.1:{port}/metrics")
    queue = topology.queue_name("notification")
    assert value(worker, "shop_consumer_redeliveries_total", queue=queue) == 2
    # The other consumers applied the event at the first attempt.
    analytics = topology.queue_name("analytics")
    redelivered = value(worker, "shop_consumer_redeliveries_total", queue=analytics)
    assert redelivered in (None, 0)
