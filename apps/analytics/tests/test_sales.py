"""Sales analytics: built from order events, shown to staff."""

import uuid
from datetime import UTC, datetime

import pytest

from apps.core.messaging.consumers import consume
from apps.core.messaging.topology import consumer_specs

pytestmark = pytest.mark.django_db(databases=["default"])


def envelope(order_id, sequence, event_type, *, day="2026-11-02", previous=None):
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": datetime.fromisoformat(f"{day}T10:00:00").replace(
            tzinfo=UTC
        ).isoformat(),
        "aggregate_id": order_id,
        "sequence": sequence,
        "data": {
            "order_id": order_id,
            "previous_status": previous,
            "reason": "",
            "order": {
                "id": order_id,
                "user_id": str(uuid.uuid4()),
                "status": event_type.split(".")[1],
                "total_amount": "21.25",
                "created_at": f"{day}T09:00:00+00:00",
                "items": [
                    {"product_id": "mug", "name": "Mug", "category": "Kitchen",
                     "quantity": 2, "unit_price": "8.50"},
                    {"product_id": "tea", "name": "Green tea", "category": "Food",
                     "quantity": 1, "unit_price": "4.25"},
                ],
            },
        },
    }  # fmt: skip


def apply(*envelopes):
    spec = consumer_specs()["analytics"]
    return [consume(spec, e) for e in envelopes]


def confirmed_order(day="2026-11-02"):
    order_id = str(uuid.uuid4())
    apply(
        envelope(order_id, 1, "order.created", day=day),
        envelope(order_id, 2, "order.confirmed", day=day, previous="pending"),
    )
    return order_id


def test_staff_see_sales_by_day_product_and_category(auth_client, staff):
    confirmed_order("2026-11-02")
    confirmed_order("2026-11-03")
    client = auth_client(staff)

    by_day = client.get("/api/v1/analytics/sales?group_by=day").json()
    by_product = client.get("/api/v1/analytics/sales?group_by=product").json()
    by_category = client.get(
        "/api/v1/analytics/sales?group_by=category&date_from=2026-11-03"
    ).json()

    assert [
        (r["day"], r["orders"], r["units"], r["revenue"]) for r in by_day["results"]
    ] == [("2026-11-03", 1, 3, "21.25"), ("2026-11-02", 1, 3, "21.25")]
    assert [
        (r["product_id"], r["units"], r["revenue"]) for r in by_product["results"]
    ] == [("mug", 4, "34.00"), ("tea", 2, "8.50")]
    assert [(r["category"], r["units"]) for r in by_category["results"]] == [
        ("Kitchen", 2),
        ("Food", 1),
    ]


def test_a_cancelled_confirmed_order_leaves_the_sales(auth_client, staff):
    order_id = confirmed_order()
    apply(envelope(order_id, 3, "order.cancelled", previous="confirmed"))

    body = auth_client(staff).get("/api/v1/analytics/sales?group_by=day").json()

    assert body["results"] == []


def test_an_order_only_placed_is_not_a_sale(auth_client, staff):
    apply(envelope(str(uuid.uuid4()), 1, "order.created"))

    body = auth_client(staff).get("/api/v1/analytics/sales?group_by=product").json()

    assert body["count"] == 0


def test_a_redelivered_confirmation_counts_once(auth_client, staff):
    order_id = str(uuid.uuid4())
    confirmation = envelope(order_id, 2, "order.confirmed", previous="pending")

    outcomes = apply(envelope(order_id, 1, "order.created"), confirmation, confirmation)

    assert outcomes == ["applied", "applied", "duplicate"]
    body = auth_client(staff).get("/api/v1/analytics/sales?group_by=day").json()
    assert body["results"][0]["units"] == 3


def test_customers_may_not_see_sales(auth_client, customer):
    response = auth_client(customer).get("/api/v1/analytics/sales?group_by=day")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


@pytest.mark.parametrize(
    "query, field",
    [
        ("", "group_by"),
        ("group_by=week", "group_by"),
        ("group_by=day&date_from=yesterday", "date_from"),
        ("group_by=day&date_from=2026-11-03&date_to=2026-11-01", "date_to"),
        ("group_by=day&colour=red", "colour"),
    ],
)
def test_bad_report_queries_are_named(auth_client, staff, query, field):
    response = auth_client(staff).get(f"/api/v1/analytics/sales?{query}")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert field in [e["field"] for e in body["errors"]]
