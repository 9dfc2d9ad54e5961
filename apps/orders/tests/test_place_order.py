from decimal import Decimal

import pytest

from apps.orders import services
from apps.orders.errors import UserInactive
from apps.orders.models import Order, OrderItem, OutboxEvent
from apps.orders.serializers import OrderSerializer
from apps.orders.tests.support import NOTHING, ORDERS_URL, row_counts
from tests.problems import assert_problem

pytestmark = pytest.mark.django_db(databases=["default", "orders", "catalog"])


def test_placing_an_order_answers_201_pending_priced_by_the_catalog(
    customer, place, kettle, mug
):
    response = place(
        customer,
        {
            "items": [
                {"product_id": "kettle", "quantity": 1},
                {"product_id": "mug", "quantity": 2},
            ]
        },
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert response["Location"] == f"{ORDERS_URL}/{body['id']}"
    assert body["user_id"] == str(customer.id)
    assert body["status"] == "pending"
    assert body["total_amount"] == "48.40"
    assert body["cancel_reason"] == ""
    assert body["items"] == [
        {
            "product_id": "kettle",
            "name": "Borealis Kettle",
            "category": "Kitchen",
            "quantity": 1,
            "unit_price": "39.90",
            "line_total": "39.90",
        },
        {
            "product_id": "mug",
            "name": "Stoneware Mug",
            "category": "Kitchen",
            "quantity": 2,
            "unit_price": "4.25",
            "line_total": "8.50",
        },
    ]
    [created] = body["history"]
    assert created["from_status"] is None
    assert created["to_status"] == "pending"
    assert created["actor"] == "customer"
    assert body["created_at"].endswith("Z")
    assert "payment_method" not in body
    assert set(body) == set(OrderSerializer().fields)


def test_placement_writes_order_items_history_and_one_created_event(
    customer, place, kettle, mug
):
    response = place(
        customer,
        {
            "items": [
                {"product_id": "mug", "quantity": 3},
                {"product_id": "kettle", "quantity": 1},
            ],
            "payment_method": "tok_visa_4242",
        },
    )

    order = Order.objects.get(pk=response.json()["id"])
    assert order.user_id == customer.id
    assert order.status == "pending"
    assert order.total_amount == Decimal("52.65")
    assert order.payment_method == "tok_visa_4242"
    lines = list(order.items.values_list("product_id", "quantity", "price"))
    assert lines == [("kettle", 1, Decimal("39.90")), ("mug", 3, Decimal("4.25"))]
    assert list(order.history.values_list("from_status", "to_status")) == [
        (None, "pending")
    ]
    [event] = OutboxEvent.objects.all()
    assert (event.event_type, event.aggregate_id, event.sequence) == (
        "order.created",
        str(order.id),
        1,
    )
    data = event.envelope["data"]
    assert data["order_id"] == str(order.id)
    assert data["previous_status"] is None
    assert data["order"]["status"] == "pending"
    assert data["order"]["user_id"] == str(customer.id)
    assert data["order"]["total_amount"] == "52.65"
    assert data["order"]["items"] == [
        {
            "product_id": "kettle",
            "name": "Borealis Kettle",
            "category": "Kitchen",
            "quantity": 1,
            "unit_price": "39.90",
        },
        {
            "product_id": "mug",
            "name": "Stoneware Mug",
            "category": "Kitchen",
            "quantity": 3,
            "unit_price": "4.25",
        },
    ]
    assert "tok_visa_4242" not in str(event.envelope)


def test_the_same_product_on_two_lines_is_merged_into_one(customer, place, mug):
    response = place(
        customer,
        {
            "items": [
                {"product_id": "mug", "quantity": 2},
                {"product_id": "mug", "quantity": 3},
            ]
        },
    )

    assert response.status_code == 201, response.json()
    [line] = response.json()["items"]
    assert (line["product_id"], line["quantity"], line["line_total"]) == (
        "mug",
        5,
        "21.25",
    )
    assert OrderItem.objects.count() == 1


def test_placement_does_not_reserve_stock(customer, place, kettle, api_client):
    placed = place(customer, {"items": [{"product_id": "kettle", "quantity": 4}]})

    assert placed.status_code == 201
    assert api_client.get("/api/v1/products/kettle").json()["stock"] == 10


def test_a_price_sent_by_the_client_is_refused(customer, place, kettle):
    response = place(
        customer,
        {"items": [{"product_id": "kettle", "quantity": 1, "price": "0.01"}]},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert [e["field"] for e in response.json()["errors"]] == ["items.0.price"]
    assert row_counts() == NOTHING


LINE = {"product_id": "kettle", "quantity": 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": []}, "items"),
        ({}, "items"),
        ({"items": "kettle"}, "items"),
        ({"items": [LINE] * 51}, "items"),
        ({"items": [{"product_id": "kettle", "quantity": 0}]}, "items.0.quantity"),
        ({"items": [{"product_id": "kettle", "quantity": -2}]}, "items.0.quantity"),
        (
            {"items": [{"product_id": "kettle", "quantity": 1001}]},
            "items.0.quantity",
        ),
        (
            {"items": [{"product_id": "kettle", "quantity": 10**30}]},
            "items.0.quantity",
        ),
        ({"items": [{"product_id": "kettle", "quantity": 1.5}]}, "items.0.quantity"),
        ({"items": [{"product_id": "kettle", "quantity": "2"}]}, "items.0.quantity"),
        ({"items": [{"product_id": "kettle", "quantity": True}]}, "items.0.quantity"),
        ({"items": [{"product_id": "kettle"}]}, "items.0.quantity"),
        ({"items": [{"quantity": 1}]}, "items.0.product_id"),
        ({"items": [{"product_id": "", "quantity": 1}]}, "items.0.product_id"),
        ({"items": [{"product_id": 7, "quantity": 1}]}, "items.0.product_id"),
        ({"items": [{"product_id": "k" * 65, "quantity": 1}]}, "items.0.product_id"),
        (
            {"items": [LINE, {"product_id": "ket tle", "quantity": 1}]},
            "items.1.product_id",
        ),  # fmt: skip
        ({"items": [{"product_id": "a\x00b", "quantity": 1}]}, "items.0.product_id"),
        ({"items": [{"product_id": "-x", "quantity": 1}]}, "items.0.product_id"),
        ({"items": ["kettle"]}, "items.0"),
        (
            {
                "items": [
                    {"product_id": "kettle", "quantity": 600},
                    {"product_id": "kettle", "quantity": 600},
                ]
            },
            "items.1.quantity",
        ),
        ({"items": [LINE], "payment_method": "t" * 65}, "payment_method"),
        ({"items": [LINE], "payment_method": 42}, "payment_method"),
        ({"items": [LINE], "status": "completed"}, "status"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    customer, place, kettle, body, field
):
    response = place(customer, body)

    assert response.status_code == 400, response.json()
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert field in [error["field"] for error in problem["errors"]]
    assert row_counts() == NOTHING


def test_a_body_that_is_not_json_is_a_400(customer, auth_client, kettle):
    response = auth_client(customer).post(
        ORDERS_URL, "{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["code"] == "malformed_request"
    assert row_counts() == NOTHING


def test_unknown_and_archived_products_are_a_409_naming_each(
    customer, place, kettle, make_product
):
    make_product(id="old-lamp", archived=True)

    response = place(
        customer,
        {
            "items": [
                {"product_id": "kettle", "quantity": 1},
                {"product_id": "old-lamp", "quantity": 1},
                {"product_id": "ghost", "quantity": 1},
            ]
        },
    )

    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "products_unavailable"
    assert problem["products"] == [
        {"product_id": "old-lamp", "reason": "archived"},
        {"product_id": "ghost", "reason": "unknown"},
    ]
    assert "ghost" in problem["detail"] and "old-lamp" in problem["detail"]
    assert row_counts() == NOTHING


def test_less_stock_than_requested_is_a_409_naming_each_short_item(
    customer, place, kettle, mug, make_product
):
    make_product(id="lamp", stock=0)

    response = place(
        customer,
        {
            "items": [
                {"product_id": "kettle", "quantity": 11},
                {"product_id": "mug", "quantity": 100},
                {"product_id": "lamp", "quantity": 1},
            ]
        },
    )

    assert response.status_code == 409
    problem = response.json()
    assert problem["code"] == "insufficient_stock"
    assert problem["items"] == [
        {"product_id": "kettle", "requested": 11, "available": 10},
        {"product_id": "lamp", "requested": 1, "available": 0},
    ]
    assert row_counts() == NOTHING


def test_a_total_over_the_column_limit_is_a_400(customer, place, make_product):
    make_product(id="yacht", price="99999999.99", stock=5)

    response = place(customer, {"items": [{"product_id": "yacht", "quantity": 2}]})

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert response.json()["errors"][0]["field"] == "items"
    assert row_counts() == NOTHING


def test_anonymous_placement_is_a_401(api_client, kettle):
    response = api_client.post(ORDERS_URL, {"items": [LINE]}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert row_counts() == NOTHING


def test_a_deactivated_users_token_is_refused_and_nothing_is_written(
    customer, auth_client, kettle, django_capture_on_commit_callbacks
):
    from apps.gateway.interface import user_tokens_revoke

    client = auth_client(customer)
    # What the users context does on deactivation: the row, and the
    # gateway's revocation record when it commits.
    with django_capture_on_commit_callbacks(execute=True):
        customer.is_active = False
        customer.save(update_fields=["is_active"])
        user_tokens_revoke(user_id=customer.id)

    response = client.post(ORDERS_URL, {"items": [LINE]}, format="json")

    assert_problem(response, 401, "token_not_valid")
    assert row_counts() == NOTHING


def test_the_service_refuses_an_inactive_user(make_user, kettle):
    user = make_user()
    user.is_active = False
    user.save(update_fields=["is_active"])

    with pytest.raises(UserInactive) as raised:
        services.order_place(user_id=user.id, items=[("kettle", 1)])

    assert raised.value.code == "user_inactive"
    assert raised.value.status == 403
    assert row_counts() == NOTHING


def test_placement_reads_back_nothing_it_has_just_written(
    customer, auth_client, kettle, mug, django_assert_max_num_queries
):
    """The order, its items, history, event and idempotency record are
    written and answered without reading them back (a query budget, so that
    a regression shows; docs/performance.md has the timings)."""
    from django.db import connections

    client = auth_client(customer)
    body = {"items": [{"product_id": "kettle", "quantity": 1},
                      {"product_id": "mug", "quantity": 2}]}  # fmt: skip

    # idempotency look-up, (savepoint), order, items, history, event,
    # notify, idempotency record, (release), the view's read of the record
    with django_assert_max_num_queries(10, connection=connections["orders"]):
        response = client.post(
            ORDERS_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="budget-1"
        )

    assert response.status_code == 201
    assert [i["product_id"] for i in response.json()["items"]] == ["kettle", "mug"]
    event = OutboxEvent.objects.get(aggregate_id=response.json()["id"])
    assert event.sequence == 1
    assert len(event.envelope["data"]["order"]["items"]) == 2
