"""Event consumers inside the Celery worker (a consumer bootstep).

Each enabled consumer (EVENT_CONSUMERS_ENABLED) gets a kombu consumer on
its own durable queue with prefetch 1; messages are plain JSON events, not
Celery tasks, so any service can publish or read them. Added to the worker
by config/celery.py.
"""

from functools import partial

from celery import bootsteps
from kombu import Consumer


class EventConsumersStep(bootsteps.ConsumerStep):
    def get_consumers(self, channel):
        from apps.core.messaging import delivery, topology

        specs = topology.enabled_consumer_specs()
        if not specs:
            return []
        topology.declare(channel)
        self._publish = topology.broker_connection()
        producer = self._publish.Producer()
        return [
            Consumer(
                channel,
                queues=[topology.main_queue(spec)],
                callbacks=[partial(delivery.handle_delivery, spec, producer=producer)],
                accept=["json"],
                prefetch_count=1,
            )
            for spec in specs
        ]

    def shutdown(self, c):
        publish = getattr(self, "_publish", None)
        if publish is not None:
            publish.release()
        return super().shutdown(c)
