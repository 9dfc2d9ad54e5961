"""The outbox relay: publish pending events, in order, and mark them sent.

Several relays may run at once: each claims rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` and skips any event whose aggregate
still has an earlier event pending, so the events of one aggregate are
published one after the other, in sequence order, whoever publishes them.
A relay that dies after publishing and before marking leaves the rows
pending: they are published again, and consumers' inboxes drop the copy.
"""

import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from django.apps import apps
from django.conf import settings
from django.db import router, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from opentelemetry.instrumentation.utils import suppress_instrumentation

from apps.core.messaging import topology, tracing

logger = logging.getLogger("apps.core.messaging.relay")


class Publisher(Protocol):
    def publish(
        self, envelopes: list[dict], trace_contexts: list[dict] | None = None
    ) -> None:
        """Publish every envelope durably, or raise. ``trace_contexts``
        (one per envelope) are the outbox rows' W3C trace contexts."""


class AmqpPublisher:
    """Publishes to the events exchange: persistent messages, publisher
    confirms (each publish returns once the broker has the message)."""

    def __init__(self):
        self.connection = topology.broker_connection()
        self._producer = None

    def _get_producer(self):
        if self._producer is None:
            self.connection.ensure_connection(max_retries=1)
            topology.declare(self.connection.default_channel)
            self._producer = self.connection.Producer(exchange=topology.exchange())
        return self._producer

    def publish(
        self, envelopes: list[dict], trace_contexts: list[dict] | None = None
    ) -> None:
        try:
            producer = self._get_producer()
            exchange = producer.exchange.name
            contexts = trace_contexts or [{}] * len(envelopes)
            for envelope, trace_context in zip(envelopes, contexts, strict=True):
                with tracing.publishing(
                    envelope, trace_context, exchange=exchange
                ) as trace_headers:
                    producer.publish(
                        envelope,
                        routing_key=envelope["event_type"],
                        serializer="json",
                        delivery_mode=2,
                        message_id=envelope["event_id"],
                        headers={
                            "schema_version": envelope["schema_version"],
                            **trace_headers,
                        },
                    )
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        self._producer = None
        self.connection.release()
        self.connection = self.connection.clone()


class InlinePublisher:
    """The embedded default's broker (``make run`` needs no RabbitMQ): keeps
    what the relay publishes, for ``relay_inline`` to hand to consumers."""

    def __init__(self):
        self.published: list[tuple[dict, dict]] = []

    def publish(
        self, envelopes: list[dict], trace_contexts: list[dict] | None = None
    ) -> None:
        contexts = trace_contexts or [{}] * len(envelopes)
        self.published.extend(zip(envelopes, contexts, strict=True))


_inline = threading.local()


def relay_inline(model) -> None:
    """Publish ``model``'s pending events to the in-process consumers, after
    the relay's transaction committed, each event to every consumer before
    the next event. A consumer whose work writes new events (the saga
    confirming an order) queues them behind the current one instead of
    delivering them in the middle of it."""
    from apps.core.messaging import consumers

    publisher = InlinePublisher()
    while relay_publish_pending(model, publisher=publisher):
        pass
    queue = getattr(_inline, "queue", None)
    if queue is not None:  # already delivering, further up this thread
        queue.extend(publisher.published)
        return
    _inline.queue = deque(publisher.published)
    try:
        while _inline.queue:
            envelope, trace_context = _inline.queue.popleft()
            for spec in topology.enabled_consumer_specs():
                if consumers.routes_to(spec, envelope["event_type"]):
                    consumers.consume_inline(spec, envelope, trace_context)
    finally:
        _inline.queue = None


def outbox_models() -> list:
    return [apps.get_model(label) for label in settings.OUTBOX_MODELS]


def relay_publish_pending(model, *, publisher: Publisher, batch_size=None) -> int:
    """Publish one batch of ``model``'s pending events; return how many."""
    db = router.db_for_write(model)
    batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
    earlier_pending = model.objects.using(db).filter(
        aggregate_id=OuterRef("aggregate_id"),
        sequence__lt=OuterRef("sequence"),
        published_at__isnull=True,
    )
    rows: list = []
    try:
        # The relay's own queries are left out of the traces (an idle relay
        # would start a trace at every poll); each event's publish span
        # joins the trace stored with it.
        with suppress_instrumentation(), transaction.atomic(using=db):
            rows = list(
                model.objects.using(db)
                .select_for_update(skip_locked=True)
                .filter(published_at__isnull=True)
                .exclude(Exists(earlier_pending))
                .order_by("created_at", "sequence")
                .only("id", "envelope", "trace_context")[:batch_size]
            )
            if not rows:
                return 0
            publisher.publish(
                [row.envelope for row in rows], [row.trace_context for row in rows]
            )
            model.objects.using(db).filter(pk__in=[row.pk for row in rows]).update(
                published_at=timezone.now()
            )
    except Exception as exc:
        logger.warning("Outbox relay: publishing failed: %r", exc)
        _record_failure(model, db, [row.pk for row in rows], exc)
        raise
    return len(rows)


def _record_failure(model, db, ids: Iterable, exc: Exception) -> None:
    model.objects.using(db).filter(pk__in=list(ids), published_at__isnull=True).update(
        attempts=F("attempts") + 1, last_error=repr(exc)[:2000]
    )


def relay_publish_all(*, publisher: Publisher) -> int:
    """Drain every outbox (OUTBOX_MODELS); return how many were published."""
    total = 0
    for model in outbox_models():
        # A batch holds one event per aggregate at most when several are
        # pending; the next batch takes the following ones.
        while published := relay_publish_pending(model, publisher=publisher):
            total += published
    return total
