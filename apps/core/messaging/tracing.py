"""W3C trace context through the outbox and RabbitMQ (ADR 0024).

The outbox stores the trace context of the transaction that wrote an event.
The relay publishes each event in a PRODUCER span, a child of that stored
context, and sends the span's context in the message headers
(``traceparent``, ``tracestate``). A consumer applies each delivery in a
CONSUMER span, a child of the headers' context. So the consumers' work, and
whatever it causes (Celery tasks, further events), joins the trace of the
request that wrote the event.

With tracing off (no SDK) the same calls pass the context through: the
API's no-op tracer hands the parent's context on unchanged, so an incoming
``traceparent`` still reaches the consumers, at the cost of a header parse.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

# A proxy: it resolves to the process's tracer provider once there is one.
_tracer = trace.get_tracer("apps.core.messaging")

TRACE_HEADERS = ("traceparent", "tracestate")


def current_trace_context() -> dict[str, str]:
    """The current trace context as W3C headers; {} when there is none."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def trace_headers(headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The W3C trace headers among a message's ``headers``."""
    if not headers:
        return {}
    return {k: str(headers[k]) for k in TRACE_HEADERS if k in headers}


def _attributes(span, envelope: Any, exchange: str, **extra) -> None:
    if not span.is_recording():
        return
    envelope = envelope if isinstance(envelope, dict) else {}
    span.set_attributes(
        {
            "messaging.system": "rabbitmq",
            "messaging.destination.name": exchange,
            "messaging.rabbitmq.destination.routing_key": str(
                envelope.get("event_type", "")
            ),
            "messaging.message.id": str(envelope.get("event_id", "")),
            "shop.event.aggregate_id": str(envelope.get("aggregate_id", "")),
            **extra,
        }
    )


@contextmanager
def publishing(
    envelope: dict, trace_context: Mapping[str, str] | None, *, exchange: str
) -> Iterator[dict[str, str]]:
    """Publish ``envelope`` inside a PRODUCER span whose parent is the
    stored ``trace_context`` (the outbox row's); yields the trace headers to
    send with the message."""
    parent = propagate.extract(trace_context) if trace_context else None
    with _tracer.start_as_current_span(
        f"publish {envelope.get('event_type', '')}",
        context=parent,
        kind=SpanKind.PRODUCER,
    ) as span:
        _attributes(span, envelope, exchange, **{"messaging.operation.type": "send"})
        yield current_trace_context()


@contextmanager
def consuming(
    headers: Mapping[str, Any] | None, envelope: Any, *, consumer: str, exchange: str
) -> Iterator[None]:
    """Apply one delivery inside a CONSUMER span whose parent is the trace
    context in the message ``headers`` (a new trace when there is none).
    An exception ends the span with an error status and propagates."""
    parent = propagate.extract(trace_headers(headers))
    event_type = envelope.get("event_type", "") if isinstance(envelope, dict) else ""
    with _tracer.start_as_current_span(
        f"process {event_type}", context=parent, kind=SpanKind.CONSUMER
    ) as span:
        _attributes(
            span,
            envelope,
            exchange,
            **{
                "messaging.operation.type": "process",
                "messaging.consumer.group.name": consumer,
            },
        )
        yield
