import uuid

import pytest

from apps.orders import services
from apps.orders.tests.support import ORDERS_URL
from tests.problems import assert_problem

pytestmark = pytest.mark.django_db(databases=["default", "orders", "catalog"])


@pytest.fixture
def orders_of(kettle):
    """``count`` PENDING orders of ``user``, placed through the service;
    returns their ids, oldest first."""

    def make(user, count=1) -> list[str]:
        return [
            str(services.order_place(user_id=user.id, items=[("kettle", 1)]).id)
            for _ in range(count)
        ]

    return make


def test_a_customer_lists_their_own_orders_newest_first(
    customer, make_user, auth_client, orders_of
):
    mine = orders_of(customer, 3)
    orders_of(make_user())

    response = auth_client(customer).get(ORDERS_URL)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [o["id"] for o in body["results"]] == list(reversed(mine))
    assert body["results"][0]["items"][0]["product_id"] == "kettle"
    assert body["results"][0]["history"][0]["to_status"] == "pending"


def test_the_list_is_paginated(customer, auth_client, orders_of):
    ids = orders_of(customer, 3)

    response = auth_client(customer).get(ORDERS_URL, {"page_size": 2, "page": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert [o["id"] for o in body["results"]] == [ids[0]]
    assert body["previous"] is not None and body["next"] is None


def test_the_list_filters_by_status(customer, auth_client, orders_of):
    pending, cancelled = orders_of(customer, 2)
    services.order_cancel(order_id=cancelled, actor="customer")
    client = auth_client(customer)

    only_cancelled = client.get(ORDERS_URL, {"status": "cancelled"}).json()
    only_pending = client.get(ORDERS_URL, {"status": "pending"}).json()

    assert [o["id"] for o in only_cancelled["results"]] == [cancelled]
    assert [o["id"] for o in only_pending["results"]] == [pending]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"page_size": 101}, "page_size"),
        ({"page": 0}, "page"),
        ({"sort": "total"}, "sort"),
    ],
)
def test_a_bad_list_query_is_a_400_naming_the_parameter(
    customer, auth_client, query, field
):
    response = auth_client(customer).get(ORDERS_URL, query)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["field"] == field


def test_staff_list_every_order_and_filter_by_user(
    customer, make_user, staff, auth_client, orders_of
):
    mine = orders_of(customer)
    theirs = orders_of(make_user())
    client = auth_client(staff)

    everyone = client.get(ORDERS_URL).json()
    one_user = client.get(ORDERS_URL, {"user_id": str(customer.id)}).json()

    assert {o["id"] for o in everyone["results"]} == {*mine, *theirs}
    assert [o["id"] for o in one_user["results"]] == mine


def test_a_customer_may_not_filter_by_user(customer, make_user, auth_client):
    response = auth_client(customer).get(ORDERS_URL, {"user_id": str(make_user().id)})

    assert_problem(response, 400, "validation_error")
    assert response.json()["errors"][0]["field"] == "user_id"


def test_anonymous_reads_are_401(api_client, customer, orders_of):
    [order_id] = orders_of(customer)

    for path in (ORDERS_URL, f"{ORDERS_URL}/{order_id}"):
        response = api_client.get(path)
        assert response.status_code == 401
        assert response.json()["code"] == "not_authenticated"


def test_the_owner_reads_an_order_with_items_and_history(
    customer, auth_client, orders_of
):
    [order_id] = orders_of(customer)
    services.order_cancel(order_id=order_id, actor="customer", reason="Too slow")

    response = auth_client(customer).get(f"{ORDERS_URL}/{order_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == order_id
    assert body["status"] == "cancelled"
    assert [
        (h["from_status"], h["to_status"], h["reason"]) for h in body["history"]
    ] == [
        (None, "pending", ""),
        ("pending", "cancelled", "Too slow"),
    ]
    assert body["items"][0]["unit_price"] == "39.90"


def test_staff_read_any_order(customer, staff, auth_client, orders_of):
    [order_id] = orders_of(customer)

    response = auth_client(staff).get(f"{ORDERS_URL}/{order_id}")

    assert response.status_code == 200
    assert response.json()["user_id"] == str(customer.id)


def test_another_customers_order_is_404_not_403(
    customer, make_user, auth_client, orders_of
):
    [order_id] = orders_of(customer)

    response = auth_client(make_user()).get(f"{ORDERS_URL}/{order_id}")

    assert response.status_code == 404
    assert response.json()["code"] == "order_not_found"


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (str(uuid.uuid4()), "order_not_found"),
        # No order id at all: no such address.
        ("not-a-uuid", "not_found"),
        ("12345", "not_found"),
    ],
)
def test_an_unknown_or_malformed_order_id_is_404(customer, auth_client, path, code):
    response = auth_client(customer).get(f"{ORDERS_URL}/{path}")

    assert_problem(response, 404, code)
