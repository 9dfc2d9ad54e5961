"""The RabbitMQ topology of the event backbone, declared from one place.

- ``<exchange>``: a durable topic exchange; routing key = event type.
- ``<exchange>.<consumer>``: each consumer's durable queue, bound by the
  consumer's routing keys.
- ``<exchange>.<consumer>.retry.<ms>ms``: one delay queue per retry delay;
  a message waits there for its TTL and is dead-lettered back to the
  consumer's queue (the delay is in the name: a queue's arguments cannot
  change once it exists).
- ``<exchange>.<consumer>.dlq``: what still fails after the last attempt,
  kept for operators to inspect and replay.

The relay declares every consumer's queues before it publishes, so that an
event published before a consumer first ran is not routed to nowhere.
"""

from dataclasses import dataclass

from django.conf import settings
from kombu import Connection, Exchange, Queue, binding


@dataclass(frozen=True)
class ConsumerSpec:
    """A consumer as settings.EVENT_CONSUMERS declares it."""

    name: str
    handler: str  # dotted path of ``handle(event) -> None``
    inbox: str  # "app_label.Model" of its inbox, in the database of its work
    bindings: tuple[str, ...]


def consumer_specs() -> dict[str, ConsumerSpec]:
    return {
        name: ConsumerSpec(
            name=name,
            handler=spec["handler"],
            inbox=spec["inbox"],
            bindings=tuple(spec["bindings"]),
        )
        for name, spec in settings.EVENT_CONSUMERS.items()
    }


def enabled_consumer_specs() -> list[ConsumerSpec]:
    """The consumers this process runs (EVENT_CONSUMERS_ENABLED)."""
    enabled = settings.EVENT_CONSUMERS_ENABLED
    return [
        spec
        for name, spec in consumer_specs().items()
        if "*" in enabled or name in enabled
    ]


def exchange() -> Exchange:
    return Exchange(settings.EVENTS_EXCHANGE, type="topic", durable=True)


def queue_name(consumer: str) -> str:
    return f"{settings.EVENTS_EXCHANGE}.{consumer}"


def main_queue(spec: ConsumerSpec) -> Queue:
    events = exchange()
    return Queue(
        queue_name(spec.name),
        bindings=[binding(events, routing_key=key) for key in spec.bindings],
        durable=True,
    )


def retry_delays_ms() -> list[int]:
    return [int(ms) for ms in settings.EVENTS_RETRY_DELAYS_MS]


def retry_queue(spec: ConsumerSpec, delay_ms: int) -> Queue:
    name = f"{queue_name(spec.name)}.retry.{delay_ms}ms"
    return Queue(
        name,
        routing_key=name,
        durable=True,
        queue_arguments={
            "x-message-ttl": delay_ms,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": queue_name(spec.name),
        },
    )


def dead_letter_queue(spec: ConsumerSpec) -> Queue:
    name = f"{queue_name(spec.name)}.dlq"
    return Queue(name, routing_key=name, durable=True)


def declare(channel, specs=None) -> None:
    """Declare the exchange and every queue of ``specs`` (default: all)."""
    exchange()(channel).declare()
    for spec in specs if specs is not None else consumer_specs().values():
        main_queue(spec)(channel).declare()
        dead_letter_queue(spec)(channel).declare()
        for delay in retry_delays_ms():
            retry_queue(spec, delay)(channel).declare()


def broker_connection(*, connect_timeout: float | None = None) -> Connection:
    """A connection to the events broker whose publishes wait for the
    broker's confirm (the relay's, the retries' and the dead letters').
    ``connect_timeout`` defaults to EVENTS_CONNECT_TIMEOUT."""
    return Connection(
        settings.EVENTS_BROKER_URL,
        transport_options={"confirm_publish": True},
        connect_timeout=(
            settings.EVENTS_CONNECT_TIMEOUT
            if connect_timeout is None
            else connect_timeout
        ),
    )
