"""Fixtures for the event backbone on the real RabbitMQ: an isolated
exchange per test, an SMTP sink standing in for the mail server, a queue
that captures every published event, and workers that run the consumers."""

import uuid
from decimal import Decimal

import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings
from kombu import Connection, Queue, binding

from apps.core.messaging import topology
from apps.products.models import Product
from tests.servers import free_port

DELAYS_MS = [100, 200]  # three attempts, then the dead-letter queue


class Mailbox:
    """aiosmtpd handler that keeps every message it is sent."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "to": list(envelope.rcpt_tos),
                "content": envelope.content.decode("utf-8", "replace"),
            }
        )
        return "250 OK"

    def subjects(self):
        return [
            line.removeprefix("Subject: ")
            for message in self.messages
            for line in message["content"].splitlines()
            if line.startswith("Subject: ")
        ]


class SmtpSink:
    def __init__(self, port):
        self.port = port
        self.mailbox = Mailbox()
        self.controller = None

    def start(self):
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()


@pytest.fixture
def events_exchange(settings):
    """A fresh exchange (and so fresh queues) for this test; deleted after."""
    name = f"test-{uuid.uuid4().hex[:10]}.events"
    with override_settings(EVENTS_EXCHANGE=name, EVENTS_RETRY_DELAYS_MS=DELAYS_MS):
        yield name
        with Connection(settings.EVENTS_BROKER_URL) as connection:
            channel = connection.channel()
            for spec in topology.consumer_specs().values():
                queues = [
                    topology.main_queue(spec),
                    topology.dead_letter_queue(spec),
                    *(topology.retry_queue(spec, d) for d in DELAYS_MS),
                ]
                for queue in queues:
                    channel.queue_delete(queue.name)
            channel.exchange_delete(name)
            channel.close()


@pytest.fixture
def captured(events_exchange, settings):
    """Every message published to the exchange, as the broker has it."""
    with Connection(settings.EVENTS_BROKER_URL) as connection:
        queue = Queue(
            f"{events_exchange}.capture",
            bindings=[binding(topology.exchange(), routing_key="#")],
            durable=False,
            auto_delete=False,
        )
        channel = connection.channel()
        queue(channel).declare()

        def drain():
            messages = []
            while (message := queue(channel).get(no_ack=True)) is not None:
                messages.append(message.decode())
            return messages

        yield drain
        channel.queue_delete(queue.name)
        channel.close()


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def smtp_sink(smtp_port):
    sink = SmtpSink(smtp_port)
    yield sink
    sink.stop()


@pytest.fixture
def consumer_env(events_exchange, smtp_port):
    """The environment of a worker that runs every event consumer."""
    return {
        "EVENTS_EXCHANGE": events_exchange,
        "EVENTS_RETRY_DELAYS_MS": ",".join(map(str, DELAYS_MS)),
        "EVENT_CONSUMERS_ENABLED": "*",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_port),
        "EMAIL_TIMEOUT": "2",
    }


@pytest.fixture
def products(transactional_db):
    Product.objects.create(
        id="mug", name="Mug", price=Decimal("8.50"), stock=50, category="Kitchen"
    )
    Product.objects.create(
        id="tea", name="Green tea", price=Decimal("4.25"), stock=50, category="Food"
    )
