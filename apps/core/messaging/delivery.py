"""What a consumer process does with each broker message: apply it, then
ack; or schedule a retry through a delay queue; or dead-letter it.

The retry or dead-letter copy is published (with confirms) before the
original is acknowledged, so a crash in between duplicates the event
(dropped by the inbox) and never loses it.
"""

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections

from apps.core import metrics
from apps.core.messaging import topology, tracing
from apps.core.messaging.consumers import PermanentError, consume
from apps.core.messaging.topology import ConsumerSpec

logger = logging.getLogger("apps.core.messaging.delivery")

ATTEMPT_HEADER = "x-attempt"


def handle_delivery(spec: ConsumerSpec, body, message, producer) -> str:
    """Apply, retry or dead-letter one delivery, then ack it; return what
    happened: "applied", "duplicate", "retry" or "dead_letter"."""
    headers = dict(message.headers or {})
    attempt = int(headers.get(ATTEMPT_HEADER, 1))
    if attempt > 1 or (message.delivery_info or {}).get("redelivered"):
        metrics.CONSUMER_REDELIVERIES.labels(queue=topology.queue_name(spec.name)).inc()
    close_old_connections()
    try:
        with tracing.consuming(
            headers, body, consumer=spec.name, exchange=settings.EVENTS_EXCHANGE
        ):
            outcome = consume(spec, body)
    except PermanentError as exc:
        outcome = "dead_letter"
        _dead_letter(spec, body, headers, attempt, exc, producer)
    except Exception as exc:  # noqa: BLE001 - any failure may be transient
        delays = topology.retry_delays_ms()
        if attempt > len(delays):
            outcome = "dead_letter"
            _dead_letter(spec, body, headers, attempt, exc, producer)
        else:
            outcome = "retry"
            _retry(spec, body, headers, attempt, delays[attempt - 1], exc, producer)
    finally:
        close_old_connections()
    _chaos_crash_before_ack(spec)
    message.ack()
    return outcome


def _retry(spec, body, headers, attempt, delay_ms, exc, producer) -> None:
    logger.info(
        "Consumer %s: attempt %d failed (%r); retrying in %d ms",
        spec.name,
        attempt,
        exc,
        delay_ms,
    )
    _publish(
        producer,
        topology.retry_queue(spec, delay_ms),
        body,
        {**headers, ATTEMPT_HEADER: attempt + 1, "x-last-error": repr(exc)[:1000]},
    )


def _dead_letter(spec, body, headers, attempt, exc, producer) -> None:
    logger.error(
        "Consumer %s: giving up after %d attempt(s): %r", spec.name, attempt, exc
    )
    _publish(
        producer,
        topology.dead_letter_queue(spec),
        body,
        {
            **headers,
            ATTEMPT_HEADER: attempt,
            "x-consumer": spec.name,
            "x-error": repr(exc)[:2000],
            "x-dead-lettered-at": datetime.now(UTC).isoformat(),
        },
    )


def _publish(producer, queue, body, headers) -> None:
    """A persistent copy of ``body`` straight to ``queue`` (confirmed)."""
    producer.publish(
        body,
        exchange="",
        routing_key=queue.name,
        serializer="json",
        delivery_mode=2,
        headers=headers,
        declare=[queue],
    )


def _chaos_crash_before_ack(spec: ConsumerSpec) -> None:
    """Fault injection for the redelivery test: when the file named by
    EVENTS_CHAOS_CRASH_FILE exists and names this consumer, remove it and
    die at once, after the work committed and before the ack."""
    path = settings.EVENTS_CHAOS_CRASH_FILE
    if not path:
        return
    marker = Path(path)
    try:
        if marker.read_text().strip() != spec.name:
            return
        marker.unlink()
    except FileNotFoundError:
        return
    logger.warning("Chaos: consumer %s dies before its ack", spec.name)
    os._exit(137)
