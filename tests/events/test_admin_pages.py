"""Operators' admin pages of the event backbone, on the real RabbitMQ."""

import uuid

import pytest
from django.test import Client
from kombu import Connection

from apps.core.messaging import delivery, topology

pytestmark = pytest.mark.django_db(databases=["default", "orders"])


@pytest.fixture
def operator(db):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_superuser(
        "root@example.com", "a-long-pass-phrase-9", name="Root"
    )
    client = Client()
    client.force_login(user)
    return client


def dead_letter(settings, consumer: str) -> str:
    """Put one event in ``consumer``'s dead-letter queue, as a worker that
    gave up on it would."""
    event_id = str(uuid.uuid4())
    spec = topology.consumer_specs()[consumer]
    body = {"event_id": event_id, "event_type": "order.created", "sequence": 1,
            "aggregate_id": "order-1"}  # fmt: skip
    with Connection(settings.EVENTS_BROKER_URL) as connection:
        topology.declare(connection.default_channel)
        delivery._dead_letter(
            spec, body, {}, 4, ConnectionRefusedError("smtp down"),
            connection.Producer(),
        )  # fmt: skip
    return event_id


def ready_messages(settings, queue_name: str) -> int:
    with Connection(settings.EVENTS_BROKER_URL) as connection:
        channel = connection.channel()
        _, count, _ = channel.queue_declare(queue_name, passive=True)
        channel.close()
        return count


def test_operators_see_dead_letters_with_their_error_and_replay_them(
    operator, events_exchange, settings
):
    settings.EVENTS_PUBLISHER = "amqp"
    event_id = dead_letter(settings, "notification")

    page = operator.get("/admin/dead-letters/")

    assert page.status_code == 200
    html = page.content.decode()
    assert event_id in html
    assert "smtp down" in html
    assert "Replay" in html

    replayed = operator.post(
        "/admin/dead-letters/",
        {"consumer": "notification", "event_id": event_id},
        follow=True,
    )

    assert "Replayed 1 event(s)." in replayed.content.decode()
    assert event_id not in replayed.content.decode().split("Replayed")[1]
    assert ready_messages(settings, topology.queue_name("notification")) == 1


def test_staff_who_are_not_superusers_may_look_but_not_replay(
    make_user, events_exchange, settings
):
    settings.EVENTS_PUBLISHER = "amqp"
    event_id = dead_letter(settings, "analytics")
    client = Client()
    client.force_login(make_user(email="staff2@example.com", is_staff=True))

    assert event_id in client.get("/admin/dead-letters/").content.decode()
    answer = client.post("/admin/dead-letters/", {"consumer": "analytics"}, follow=True)

    assert "Only superusers may replay" in answer.content.decode()
    assert (
        len([m for m in answer.content.decode().split() if event_id in m]) >= 1
    )  # still listed


def test_customers_are_sent_to_the_admin_login(make_user):
    client = Client()
    client.force_login(make_user(email="shopper@example.com"))

    response = client.get("/admin/dead-letters/")

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.parametrize(
    "path", ["/admin/orders/outboxevent/", "/admin/orders/notification/"]
)
def test_outbox_and_notification_pages_are_read_only(operator, path):
    response = operator.get(path)

    assert response.status_code == 200
    assert operator.get(path + "add/").status_code == 403
