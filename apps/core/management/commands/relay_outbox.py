"""Run the outbox relay: publish pending events to RabbitMQ, in order.

On PostgreSQL the relay sleeps on LISTEN and wakes at each commit that
wrote an event (NOTIFY); it also polls every OUTBOX_RELAY_POLL_SECONDS.
Run as many replicas as you like: they share the work (SKIP LOCKED).
"""

import signal
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connections, router
from opentelemetry.instrumentation.utils import suppress_instrumentation

from apps.core.messaging import relay
from apps.core.messaging.outbox import notify_channel


class Command(BaseCommand):
    help = "Publish pending outbox events to the events exchange."

    def add_arguments(self, parser):
        parser.add_argument(
            "--once", action="store_true", help="Drain the outboxes once and exit."
        )

    def handle(self, *args, once=False, **options):
        if not once:
            from config.telemetry import configure_tracing

            configure_tracing("relay")
        publisher = relay.AmqpPublisher()
        if once:
            published = relay.relay_publish_all(publisher=publisher)
            self.stdout.write(f"Published {published} event(s).")
            publisher.close()
            return
        self._stop = False
        signal.signal(signal.SIGTERM, self._request_stop)
        signal.signal(signal.SIGINT, self._request_stop)
        listener = self._listen()
        self.stdout.write("Outbox relay running.")
        failures = 0
        while not self._stop:
            try:
                relay.relay_publish_all(publisher=publisher)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - keep relaying
                failures += 1
                self.stderr.write(f"Relay: publishing failed ({exc!r}); retrying.")
                close_old_connections()
                time.sleep(min(0.1 * 2**failures, 5))
                continue
            self._wait(listener)
        publisher.close()
        if listener is not None:
            listener.close()

    def _request_stop(self, *_):
        self._stop = True

    def _listen(self):
        """A connection LISTENing on every outbox's channel (PostgreSQL)."""
        models = relay.outbox_models()
        aliases = {router.db_for_write(model) for model in models}
        if len(aliases) != 1:
            return None
        wrapper = connections[aliases.pop()]
        if wrapper.vendor != "postgresql":
            return None
        # Plumbing, not work: no trace of its own.
        with suppress_instrumentation():
            listener = wrapper.get_new_connection(wrapper.get_connection_params())
            listener.autocommit = True
            for model in models:
                listener.execute(f'LISTEN "{notify_channel(model)}"')
        return listener

    def _wait(self, listener) -> None:
        """Until a NOTIFY, the poll interval, or a stop request. A signal
        does not interrupt a blocking wait, so wait in short slices."""
        deadline = time.monotonic() + settings.OUTBOX_RELAY_POLL_SECONDS
        while not self._stop and (left := deadline - time.monotonic()) > 0:
            if listener is None:
                time.sleep(min(left, 0.5))
                continue
            for _ in listener.notifies(timeout=min(left, 0.5), stop_after=1):
                return
