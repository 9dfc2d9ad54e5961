"""W3C trace context through the outbox and RabbitMQ with tracing off (the
default, and this test process: no SDK). The caller's ``traceparent`` is
passed through unchanged: stored with the event the request wrote, sent in
the message's headers, and current while a consumer applies it.
(tests/events/test_tracing.py shows the same path with tracing on, across
real processes.)"""

import secrets

import pytest
from kombu import Connection, Queue, binding
from opentelemetry import trace

from apps.core.messaging import delivery, relay, topology
from apps.core.messaging.topology import ConsumerSpec
from apps.orders.messaging_models import InboxEntry, OutboxEvent

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "orders", "catalog"]
)

seen: list[trace.SpanContext] = []


def record_trace_context(event) -> None:
    """A consumer's handler: notes the trace context it runs in."""
    seen.append(trace.get_current_span().get_span_context())


PROBE = ConsumerSpec(
    name="trace_probe",
    handler=f"{__name__}.record_trace_context",
    inbox="orders.InboxEntry",
    bindings=("order.*",),
)


@pytest.fixture
def probe_queue(events_exchange, settings):
    """The probe consumer's queue on this test's exchange; yields a
    function that takes the next message from it."""
    with Connection(settings.EVENTS_BROKER_URL) as connection:
        channel = connection.channel()
        queue = Queue(
            f"{events_exchange}.trace_probe",
            bindings=[binding(topology.exchange(), routing_key="order.*")],
            durable=False,
        )(channel)
        queue.declare()
        yield lambda: queue.get(no_ack=False, accept=["json"])
        queue.delete()
        channel.close()


def place_order(client, **headers) -> str:
    response = client.post(
        "/api/v1/orders",
        {"items": [{"product_id": "mug", "quantity": 1}]},
        format="json",
        **headers,
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_the_callers_traceparent_goes_with_the_event_to_its_consumer(
    products, customer, auth_client, probe_queue
):
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    traceparent = f"00-{trace_id}-{span_id}-01"

    order_id = place_order(
        auth_client(customer),
        HTTP_TRACEPARENT=traceparent,
        HTTP_TRACESTATE="vendor=opaque",
    )

    event = OutboxEvent.objects.get(aggregate_id=order_id)
    assert event.trace_context == {
        "traceparent": traceparent,
        "tracestate": "vendor=opaque",
    }
    publisher = relay.AmqpPublisher()
    try:
        assert relay.relay_publish_all(publisher=publisher) == 1
        message = probe_queue()
        assert message.headers["traceparent"] == traceparent
        assert message.headers["tracestate"] == "vendor=opaque"
        assert message.headers["schema_version"] == 1

        seen.clear()
        outcome = delivery.handle_delivery(
            PROBE, message.decode(), message, publisher.connection.Producer()
        )
    finally:
        publisher.close()
    assert outcome == "applied"
    assert [(c.trace_id, c.span_id) for c in seen] == [
        (int(trace_id, 16), int(span_id, 16))
    ]
    assert InboxEntry.objects.filter(consumer="trace_probe").count() == 1


def test_an_event_written_outside_any_trace_is_sent_without_trace_headers(
    products, customer, auth_client, probe_queue
):
    order_id = place_order(auth_client(customer))

    assert OutboxEvent.objects.get(aggregate_id=order_id).trace_context == {}
    publisher = relay.AmqpPublisher()
    try:
        relay.relay_publish_all(publisher=publisher)
        message = probe_queue()
        seen.clear()
        delivery.handle_delivery(
            PROBE, message.decode(), message, publisher.connection.Producer()
        )
    finally:
        publisher.close()
    assert "traceparent" not in message.headers
    assert [c.is_valid for c in seen] == [False]


def test_a_malformed_traceparent_is_ignored(products, customer, auth_client):
    order_id = place_order(auth_client(customer), HTTP_TRACEPARENT="00-not-a-trace-01")

    assert OutboxEvent.objects.get(aggregate_id=order_id).trace_context == {}
