"""Scrape-time state of the event backbone: the outboxes' backlog and the
dead-letter queues' depth (ADR 0023)."""

from django.apps import apps
from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from apps.core.messaging import topology
from apps.core.metrics import StateCollector


class OutboxCollector(StateCollector):
    """Events written and not yet published, over every outbox in
    OUTBOX_MODELS: one query each, on the outbox's partial index of pending
    rows."""

    def measure(self):
        pending = 0
        oldest = None
        for label in settings.OUTBOX_MODELS:
            model = apps.get_model(label)
            found = model.objects.filter(published_at__isnull=True).aggregate(
                n=Count("pk"), oldest=Min("created_at")
            )
            pending += found["n"]
            if found["oldest"] is not None and (
                oldest is None or found["oldest"] < oldest
            ):
                oldest = found["oldest"]
        age = 0.0
        if oldest is not None:
            age = max((timezone.now() - oldest).total_seconds(), 0.0)
        yield GaugeMetricFamily(
            "shop_outbox_pending_events",
            "Outbox events not yet published to the broker.",
            value=pending,
        )
        yield GaugeMetricFamily(
            "shop_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox event not yet published (0: none).",
            value=age,
        )


class DeadLettersCollector(StateCollector):
    """Messages in each consumer's dead-letter queue, by a passive declare
    (which creates nothing). A queue that does not exist has no series; with
    the broker down (or no broker: EVENTS_PUBLISHER is not "amqp") there are
    none."""

    def measure(self):
        if settings.EVENTS_PUBLISHER != "amqp":
            return []
        depths: dict[str, int] = {}
        with topology.broker_connection(
            connect_timeout=float(getattr(settings, "METRICS_BROKER_TIMEOUT", 1.0))
        ) as connection:
            channel = connection.channel()
            try:
                for spec in topology.consumer_specs().values():
                    name = topology.dead_letter_queue(spec).name
                    try:
                        _, depth, _ = channel.queue_declare(queue=name, passive=True)
                    except connection.channel_errors:
                        # Not found: the broker closed the channel.
                        channel = connection.channel()
                        continue
                    depths[name] = depth
            finally:
                channel.close()
        family = GaugeMetricFamily(
            "shop_dead_letters",
            "Messages in a consumer's dead-letter queue.",
            labels=["queue"],
        )
        for name, depth in sorted(depths.items()):
            family.add_metric([name], depth)
        return [family]
