import uuid

import pytest

from apps.orders import interface, services
from apps.orders.models import Order, OrderStatus, OutboxEvent
from apps.orders.tests.support import ORDERS_URL
from tests.problems import assert_problem

pytestmark = pytest.mark.django_db(databases=["default", "orders", "catalog"])


@pytest.fixture
def order_of(place, kettle):
    """A PENDING order placed through the API by ``user``; returns its id."""

    def make(user) -> str:
        response = place(user, {"items": [{"product_id": "kettle", "quantity": 1}]})
        assert response.status_code == 201, response.json()
        return response.json()["id"]

    return make


def _events(order_id) -> list[tuple[int, str, str | None]]:
    return [
        (e.sequence, e.event_type, e.envelope["data"]["previous_status"])
        for e in OutboxEvent.objects.filter(aggregate_id=order_id).order_by("sequence")
    ]


def test_the_full_journey_writes_history_and_one_event_per_change(
    customer, staff, auth_client, order_of
):
    order_id = order_of(customer)
    staff_client = auth_client(staff)

    services.order_confirm(order_id=order_id)
    shipped = staff_client.post(f"{ORDERS_URL}/{order_id}/ship")
    completed = staff_client.post(f"{ORDERS_URL}/{order_id}/complete")

    assert shipped.status_code == 200, shipped.json()
    assert shipped.json()["status"] == "shipped"
    assert completed.status_code == 200, completed.json()
    body = completed.json()
    assert body["status"] == "completed"
    assert [
        (h["from_status"], h["to_status"], h["actor"]) for h in body["history"]
    ] == [
        (None, "pending", "customer"),
        ("pending", "confirmed", "system"),
        ("confirmed", "shipped", "staff"),
        ("shipped", "completed", "staff"),
    ]
    assert all(h["changed_at"].endswith("Z") for h in body["history"])
    assert _events(order_id) == [
        (1, "order.created", None),
        (2, "order.confirmed", "pending"),
        (3, "order.shipped", "confirmed"),
        (4, "order.completed", "shipped"),
    ]
    last = OutboxEvent.objects.get(aggregate_id=order_id, sequence=4)
    assert last.envelope["data"]["order"]["status"] == "completed"
    history = Order.objects.get(pk=order_id).history.order_by("created_at")
    assert history.last().actor == f"staff:{staff.email}"


def test_the_owner_cancels_a_pending_order_with_a_reason(
    customer, auth_client, order_of
):
    order_id = order_of(customer)

    response = auth_client(customer).post(
        f"{ORDERS_URL}/{order_id}/cancel", {"reason": "Ordered twice"}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["cancel_reason"] == "Ordered twice"
    assert body["history"][-1]["from_status"] == "pending"
    assert body["history"][-1]["to_status"] == "cancelled"
    assert body["history"][-1]["reason"] == "Ordered twice"
    assert body["history"][-1]["actor"] == "customer"
    event = OutboxEvent.objects.get(aggregate_id=order_id, sequence=2)
    assert event.event_type == "order.cancelled"
    assert event.envelope["data"]["reason"] == "Ordered twice"
    assert event.envelope["data"]["previous_status"] == "pending"


def test_a_cancel_without_a_reason_says_who_cancelled(
    customer, staff, auth_client, order_of
):
    mine, theirs = order_of(customer), order_of(customer)

    by_customer = auth_client(customer).post(f"{ORDERS_URL}/{mine}/cancel")
    by_staff = auth_client(staff).post(
        f"{ORDERS_URL}/{theirs}/cancel", {"reason": "  "}, format="json"
    )

    assert by_customer.status_code == 200
    assert by_customer.json()["cancel_reason"] == "Cancelled at your request"
    assert by_staff.json()["cancel_reason"] == "Cancelled by the shop"
    event = OutboxEvent.objects.get(aggregate_id=mine, sequence=2)
    assert event.envelope["data"]["reason"] == "Cancelled at your request"


def test_staff_cancel_a_confirmed_order(customer, staff, auth_client, order_of):
    order_id = order_of(customer)
    services.order_confirm(order_id=order_id)

    response = auth_client(staff).post(
        f"{ORDERS_URL}/{order_id}/cancel", {"reason": "Out of stock"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["history"][-1]["actor"] == "staff"
    assert _events(order_id)[-1] == (3, "order.cancelled", "confirmed")


@pytest.mark.parametrize(
    ("path_to", "status", "action"),
    [
        ([], "pending", "ship"),
        ([], "pending", "complete"),
        (["confirmed"], "confirmed", "complete"),
        (["confirmed", "shipped"], "shipped", "ship"),
        (["confirmed", "shipped"], "shipped", "cancel"),
        (["confirmed", "shipped", "completed"], "completed", "cancel"),
        (["confirmed", "shipped", "completed"], "completed", "ship"),
        (["confirmed", "shipped", "completed"], "completed", "complete"),
        (["cancelled"], "cancelled", "cancel"),
        (["cancelled"], "cancelled", "ship"),
        (["cancelled"], "cancelled", "complete"),
        (["confirmed", "cancelled"], "cancelled", "ship"),
    ],
)
def test_an_illegal_change_is_a_409_naming_the_current_status(
    customer, staff, auth_client, order_of, path_to, status, action
):
    order_id = order_of(customer)
    steps = {
        "confirmed": services.order_confirm,
        "shipped": services.order_ship,
        "completed": services.order_complete,
        "cancelled": services.order_cancel,
    }
    for step in path_to:
        steps[step](order_id=order_id, actor="system")
    events_before = _events(order_id)

    response = auth_client(staff).post(f"{ORDERS_URL}/{order_id}/{action}")

    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "illegal_transition"
    assert problem["current_status"] == status
    assert f"is {status}" in problem["detail"]
    assert Order.objects.get(pk=order_id).status == status
    assert Order.objects.get(pk=order_id).history.count() == 1 + len(path_to)
    assert _events(order_id) == events_before


def test_confirming_twice_is_illegal(customer, order_of):
    order_id = order_of(customer)
    services.order_confirm(order_id=order_id)

    with pytest.raises(interface.IllegalTransition) as raised:
        interface.confirm_order(order_id=order_id)

    assert raised.value.current_status == "confirmed"


def test_every_status_is_in_the_transition_table():
    assert set(services.TRANSITIONS) == set(OrderStatus.values)
    for targets in services.TRANSITIONS.values():
        assert targets <= set(OrderStatus.values)


def test_a_customer_may_not_ship_or_complete_their_own_order(
    customer, auth_client, order_of
):
    order_id = order_of(customer)
    services.order_confirm(order_id=order_id)
    client = auth_client(customer)

    ship = client.post(f"{ORDERS_URL}/{order_id}/ship")
    complete = client.post(f"{ORDERS_URL}/{order_id}/complete")

    assert (ship.status_code, ship.json()["code"]) == (403, "permission_denied")
    assert (complete.status_code, complete.json()["code"]) == (403, "permission_denied")
    assert Order.objects.get(pk=order_id).status == "confirmed"


def test_another_customers_order_is_404_for_every_action(
    customer, make_user, auth_client, order_of
):
    order_id = order_of(customer)
    stranger = auth_client(make_user())

    for action in ("cancel", "ship", "complete"):
        response = stranger.post(f"{ORDERS_URL}/{order_id}/{action}")
        assert response.status_code == 404, action
        assert response.json()["code"] == "order_not_found"
    assert Order.objects.get(pk=order_id).status == "pending"
    assert len(_events(order_id)) == 1


def test_a_cancel_reason_over_500_characters_is_a_400(customer, auth_client, order_of):
    order_id = order_of(customer)

    response = auth_client(customer).post(
        f"{ORDERS_URL}/{order_id}/cancel", {"reason": "x" * 501}, format="json"
    )

    assert_problem(response, 400, "validation_error")
    assert response.json()["errors"][0]["field"] == "reason"
    assert Order.objects.get(pk=order_id).status == "pending"


def test_the_interface_confirms_and_cancels_for_the_saga(customer, order_of):
    order_id = order_of(customer)

    confirmed = interface.confirm_order(order_id=order_id, reason="paid")
    cancelled = interface.cancel_order(order_id=order_id, reason="shipping failed")

    assert confirmed.status == "confirmed"
    assert cancelled.status == "cancelled"
    assert cancelled.cancel_reason == "shipping failed"
    assert cancelled.items[0].product_id == "kettle"
    assert interface.get_order(order_id).status == "cancelled"
    assert [e[1] for e in _events(order_id)] == [
        "order.created",
        "order.confirmed",
        "order.cancelled",
    ]


def test_the_interface_names_a_missing_order():
    with pytest.raises(interface.OrderNotFound):
        interface.get_order(uuid.uuid4())
    with pytest.raises(interface.OrderNotFound):
        interface.cancel_order(order_id=uuid.uuid4(), reason="x")
