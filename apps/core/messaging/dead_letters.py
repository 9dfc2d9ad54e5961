"""Operators' view of the dead-letter queues: look, and replay.

Looking takes messages without acknowledging them and then puts each back
(RabbitMQ returns a requeued message to its place), so a look changes
nothing. Replaying moves a dead letter back to its consumer's queue as a
first attempt; the inbox still drops anything already applied.
"""

from dataclasses import dataclass
from typing import Any

from apps.core.messaging import delivery, topology, tracing
from apps.core.messaging.topology import ConsumerSpec


@dataclass(frozen=True)
class DeadLetter:
    consumer: str
    event_id: str
    event_type: str
    aggregate_id: str
    sequence: int | None
    attempts: int
    error: str
    dead_lettered_at: str
    envelope: Any


def _dead_letter(spec: ConsumerSpec, message) -> DeadLetter:
    body = message.decode()
    headers = message.headers or {}
    envelope = body if isinstance(body, dict) else {}
    return DeadLetter(
        consumer=spec.name,
        event_id=str(envelope.get("event_id", "")),
        event_type=str(envelope.get("event_type", "")),
        aggregate_id=str(envelope.get("aggregate_id", "")),
        sequence=envelope.get("sequence"),
        attempts=int(headers.get(delivery.ATTEMPT_HEADER, 0)),
        error=str(headers.get("x-error", "")),
        dead_lettered_at=str(headers.get("x-dead-lettered-at", "")),
        envelope=body,
    )


def _specs(consumer: str | None) -> list[ConsumerSpec]:
    specs = topology.consumer_specs()
    if consumer is None:
        return list(specs.values())
    if consumer not in specs:
        raise ValueError(f"Unknown consumer {consumer!r}; known: {sorted(specs)}")
    return [specs[consumer]]


def dead_letters_list(*, consumer: str | None = None, limit: int = 100):
    """The dead letters of ``consumer`` (default: every consumer), oldest
    first, at most ``limit`` per consumer."""
    found: list[DeadLetter] = []
    with topology.broker_connection() as connection:
        channel = connection.channel()
        try:
            topology.declare(channel)
            for spec in _specs(consumer):
                queue = topology.dead_letter_queue(spec)(channel)
                taken = []
                while len(taken) < limit:
                    message = queue.get(no_ack=False, accept=["json"])
                    if message is None:
                        break
                    taken.append(message)
                    found.append(_dead_letter(spec, message))
                for message in taken:
                    message.reject(requeue=True)
        finally:
            channel.close()
    return found


def dead_letters_replay(
    *, consumer: str | None = None, event_ids: set[str] | None = None
) -> list[DeadLetter]:
    """Move dead letters (all, or those whose event id is in
    ``event_ids``) back to their consumer's queue; return those moved."""
    moved: list[DeadLetter] = []
    with topology.broker_connection() as connection:
        channel = connection.channel()
        producer = connection.Producer(channel=channel)
        try:
            topology.declare(channel)
            for spec in _specs(consumer):
                queue = topology.dead_letter_queue(spec)(channel)
                kept = []
                while True:
                    message = queue.get(no_ack=False, accept=["json"])
                    if message is None:
                        break
                    letter = _dead_letter(spec, message)
                    if event_ids is not None and letter.event_id not in event_ids:
                        kept.append(message)
                        continue
                    producer.publish(
                        letter.envelope,
                        exchange="",
                        routing_key=topology.queue_name(spec.name),
                        serializer="json",
                        delivery_mode=2,
                        headers={
                            delivery.ATTEMPT_HEADER: 1,
                            "x-replayed": True,
                            # The replayed work stays in the event's trace.
                            **tracing.trace_headers(message.headers),
                        },
                    )
                    message.ack()
                    moved.append(letter)
                for message in kept:
                    message.reject(requeue=True)
        finally:
            channel.close()
    return moved
