"""Abstract models of the messaging machinery; each context that publishes
or consumes events has concrete subclasses in its own database."""

import uuid

from django.db import models
from django.utils import timezone


class OutboxEventBase(models.Model):
    """An event written in the same transaction as the change it describes.

    ``envelope`` is the message body exactly as it is published. ``sequence``
    numbers the events of one aggregate from 1, so that relays publish and
    consumers apply them in order.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    aggregate_id = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField()
    event_type = models.CharField(max_length=64)
    envelope = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    # Null while pending; set by the relay once the broker confirmed it.
    published_at = models.DateTimeField(null=True, blank=True)
    # Failed publish attempts, and the last error, for operators.
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    # The W3C trace context (traceparent, tracestate) of the transaction that
    # wrote the event; the relay sends it in the message's headers, so the
    # consumers' work joins the trace of the request that caused it.
    trace_context = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["aggregate_id", "sequence"],
                name="%(app_label)s_%(class)s_aggregate_sequence",
            )
        ]
        indexes = [
            models.Index(
                fields=["created_at"],
                condition=models.Q(published_at__isnull=True),
                name="%(app_label)s_%(class)s_pending",
            ),
            # Retention (ADR 0030) deletes published events by age.
            models.Index(
                fields=["published_at"],
                condition=models.Q(published_at__isnull=False),
                name="%(app_label)s_%(class)s_published",
            ),
        ]

    def __str__(self):
        return f"{self.event_type} {self.aggregate_id} #{self.sequence}"


class InboxEntryBase(models.Model):
    """An event a consumer has applied: a redelivery finds it and does
    nothing; the (aggregate, sequence) pair lets the consumer apply the
    events of one aggregate in order."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    consumer = models.CharField(max_length=64)
    event_id = models.UUIDField()
    event_type = models.CharField(max_length=64)
    aggregate_id = models.CharField(max_length=64)
    sequence = models.PositiveIntegerField()
    processed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True
        ordering = ["-processed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["consumer", "event_id"],
                name="%(app_label)s_%(class)s_consumer_event",
            ),
            models.UniqueConstraint(
                fields=["consumer", "aggregate_id", "sequence"],
                name="%(app_label)s_%(class)s_consumer_sequence",
            ),
        ]
        # Retention (ADR 0030) deletes entries by age.
        indexes = [
            models.Index(
                fields=["processed_at"], name="%(app_label)s_%(class)s_processed"
            )
        ]

    def __str__(self):
        return f"{self.consumer}: {self.event_type} {self.aggregate_id}"
