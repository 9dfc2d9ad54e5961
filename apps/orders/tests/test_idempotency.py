import threading
import time

import pytest
from django.db import connections, transaction

from apps.orders import services
from apps.orders.errors import IdempotencyKeyReused
from apps.orders.models import IdempotencyRecord, Order, OutboxEvent
from apps.orders.tests.support import NOTHING, row_counts
from tests.problems import assert_problem

pytestmark = pytest.mark.django_db(databases=["default", "orders", "catalog"])

BODY = {"items": [{"product_id": "kettle", "quantity": 2}]}


def test_a_retry_with_the_same_key_and_body_answers_the_first_response(
    customer, place, kettle, auth_client
):
    client = auth_client(customer)
    first = place(customer, BODY, key="order-7f3a", client=client)

    again = place(customer, BODY, key="order-7f3a", client=client)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert Order.objects.count() == 1
    assert OutboxEvent.objects.count() == 1
    record = IdempotencyRecord.objects.get()
    assert (record.user_id, record.key) == (customer.id, "order-7f3a")
    assert str(record.order_id) == first.json()["id"]
    assert len(record.fingerprint) == 64


def test_a_retry_answers_the_first_response_even_after_the_order_changed(
    customer, place, kettle, auth_client
):
    client = auth_client(customer)
    first = place(customer, BODY, key="k1", client=client)
    client.post(f"{first['Location']}/cancel", {}, format="json")

    again = place(customer, BODY, key="k1", client=client)

    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["status"] == "pending"
    assert Order.objects.get().status == "cancelled"


def test_the_same_key_with_another_body_is_a_409_and_creates_nothing(
    customer, place, kettle, mug, auth_client
):
    client = auth_client(customer)
    place(customer, BODY, key="k1", client=client)
    counts = row_counts()

    other = place(
        customer,
        {"items": [{"product_id": "mug", "quantity": 1}]},
        key="k1",
        client=client,
    )
    other_payment = place(
        customer, {**BODY, "payment_method": "tok_2"}, key="k1", client=client
    )

    for response in (other, other_payment):
        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_key_reused"
    assert row_counts() == counts


def test_keys_are_scoped_per_user(customer, make_user, place, kettle):
    other_user = make_user()
    mine = place(customer, BODY, key="shared-key")

    theirs = place(other_user, BODY, key="shared-key")

    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine.json()["id"]
    assert Order.objects.count() == 2


def test_without_a_key_each_request_places_an_order(customer, place, kettle):
    place(customer, BODY)
    place(customer, BODY)

    assert Order.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 0


@pytest.mark.parametrize(
    "key", ["", "x" * 256, "caf\u00e9", "tab\there", "line\nbreak"]
)
def test_a_malformed_key_is_a_400_and_writes_nothing(customer, place, kettle, key):
    response = place(customer, BODY, key=key)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert row_counts() == NOTHING


def test_a_key_of_255_printable_characters_is_accepted(customer, place, kettle):
    key = "A-z 0~" + "k" * 249

    response = place(customer, BODY, key=key)

    assert response.status_code == 201
    assert IdempotencyRecord.objects.get().key == key


def test_a_failed_placement_records_no_key_so_a_retry_can_succeed(
    customer, place, kettle
):
    short = place(
        customer, {"items": [{"product_id": "kettle", "quantity": 11}]}, key="k9"
    )
    assert_problem(short, 409, "insufficient_stock")
    assert row_counts() == NOTHING

    retried = place(
        customer, {"items": [{"product_id": "kettle", "quantity": 11}]}, key="k9"
    )

    assert retried.status_code == 409
    assert retried.json()["code"] == "insufficient_stock"


# -- Concurrent duplicates: real threads, each with its own connection -------

concurrent = pytest.mark.django_db(
    transaction=True, databases=["default", "orders", "catalog"]
)


def _waiting_on_a_lock() -> int:
    with connections["orders"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _race(customer, first_items, second_items):
    """Place ``first_items`` and hold its transaction open until a second
    placement with the same key is blocked on the key's unique index; then
    commit the first. Returns the first order and the second's outcome."""
    placed, release = threading.Event(), threading.Event()
    outcome: dict = {}

    def first():
        try:
            with transaction.atomic(using="orders"):
                outcome["first"] = services.order_place(
                    user_id=customer.id, items=first_items, idempotency_key="dup"
                )
                placed.set()
                release.wait(timeout=30)
        finally:
            placed.set()
            connections.close_all()

    def second():
        try:
            outcome["second"] = services.order_place(
                user_id=customer.id, items=second_items, idempotency_key="dup"
            )
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcome["second"] = exc
        finally:
            connections.close_all()

    first_thread = threading.Thread(target=first)
    first_thread.start()
    assert placed.wait(timeout=30)
    second_thread = threading.Thread(target=second)
    second_thread.start()
    deadline = time.monotonic() + 30
    while _waiting_on_a_lock() == 0:
        assert time.monotonic() < deadline, "the second placement never blocked"
        assert second_thread.is_alive(), outcome
    release.set()
    first_thread.join(timeout=30)
    second_thread.join(timeout=30)
    return outcome["first"], outcome["second"]


@concurrent
def test_two_concurrent_placements_with_one_key_create_one_order(customer, kettle):
    first, second = _race(customer, [("kettle", 2)], [("kettle", 2)])

    assert isinstance(second, Order), second
    assert second.id == first.id
    assert Order.objects.count() == 1
    assert OutboxEvent.objects.count() == 1
    assert IdempotencyRecord.objects.count() == 1


@concurrent
def test_a_concurrent_placement_with_one_key_and_another_body_is_refused(
    customer, kettle
):
    first, second = _race(customer, [("kettle", 2)], [("kettle", 3)])

    assert isinstance(second, IdempotencyKeyReused), second
    assert Order.objects.get().id == first.id
    assert OutboxEvent.objects.count() == 1


@concurrent
def test_concurrent_api_requests_with_one_key_get_one_order_and_one_answer(
    customer, place, kettle, auth_client
):
    clients = [auth_client(customer) for _ in range(4)]
    barrier = threading.Barrier(len(clients))
    responses = [None] * len(clients)

    def post(index):
        try:
            barrier.wait(timeout=30)
            responses[index] = place(
                customer, BODY, key="tap-tap", client=clients[index]
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [r.status_code for r in responses] == [201] * len(clients)
    assert len({r.content for r in responses}) == 1
    assert Order.objects.count() == 1
    assert OutboxEvent.objects.count() == 1
