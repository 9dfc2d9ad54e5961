import pytest

from apps.orders.selectors import order_representation
from apps.orders.serializers import OrderSerializer
from apps.orders.services import order_place

pytestmark = pytest.mark.django_db(databases=["default", "orders", "catalog"])


def test_the_orders_api_is_documented_with_problem_responses(api_client):
    schema = api_client.get("/api/schema/?format=json").json()

    paths = schema["paths"]
    create = paths["/api/v1/orders"]["post"]
    assert {"201", "400", "401", "409"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "200" in paths["/api/v1/orders"]["get"]["responses"]
    assert "404" in paths["/api/v1/orders/{order_id}"]["get"]["responses"]
    for action in ("cancel", "ship", "complete"):
        responses = paths[f"/api/v1/orders/{{order_id}}/{action}"]["post"]["responses"]
        assert {"200", "404", "409"} <= set(responses)


def test_the_documented_order_shape_is_the_one_served(customer, kettle):
    order = order_place(user_id=customer.id, items=[("kettle", 1)])

    body = order_representation(order)

    assert set(body) == set(OrderSerializer().fields)
    item_fields = OrderSerializer().fields["items"].child.fields
    history_fields = OrderSerializer().fields["history"].child.fields
    assert set(body["items"][0]) == set(item_fields)
    assert set(body["history"][0]) == set(history_fields)
