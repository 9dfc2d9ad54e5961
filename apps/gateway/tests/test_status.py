import pytest

pytestmark = pytest.mark.django_db


def test_status_shows_contexts_routes_instances_and_circuits(
    auth_client, staff, settings
):
    settings.CONTEXTS = {
        **settings.CONTEXTS,
        "products": {
            "mode": "remote",
            "instances": ["http://127.0.0.1:9"],
            "balancer": "round_robin",
        },
    }

    response = auth_client(staff).get("/api/v1/gateway/status")

    assert response.status_code == 200
    contexts = {c["name"]: c for c in response.json()["contexts"]}
    assert contexts["users"] == {
        "name": "users",
        "mode": "local",
        "routes": ["/api/v1/users", "/.well-known/jwks.json"],
    }
    products = contexts["products"]
    assert products["mode"] == "remote"
    assert products["routes"] == ["/api/v1/products"]
    assert products["balancer"] == "round_robin"
    assert [i["url"] for i in products["instances"]] == ["http://127.0.0.1:9"]
    assert products["circuit"] == "closed"  # nothing called it yet


def test_status_is_for_staff_only(api_client, auth_client, customer):
    anonymous = api_client.get("/api/v1/gateway/status")
    customer_answer = auth_client(customer).get("/api/v1/gateway/status")

    assert (anonymous.status_code, anonymous.json()["code"]) == (
        401,
        "not_authenticated",
    )
    assert (customer_answer.status_code, customer_answer.json()["code"]) == (
        403,
        "permission_denied",
    )
