"""One policy for input an endpoint does not know (ADR 0022), across the
users, catalog, orders and analytics APIs: an unknown query parameter or
body field is a 400 naming it; If-Match is honoured (stale: 412) where a
resource is versioned and refused (400) on any other write."""

import uuid
from decimal import Decimal

import pytest

from apps.products.models import Product

pytestmark = pytest.mark.django_db(databases=["default", "orders", "catalog"])


@pytest.fixture
def kettle():
    return Product.objects.create(
        id="kettle", name="Kettle", price=Decimal("10.00"), stock=5, category="Misc"
    )


def _fields(response) -> set[str]:
    return {error["field"] for error in response.json()["errors"]}


def _assert_names(response, *names):
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "validation_error"
    assert set(names) <= _fields(response)


@pytest.mark.parametrize(
    ("who", "path"),
    [
        ("staff", "/api/v1/users"),
        ("customer", "/api/v1/users/{customer}"),
        ("anyone", "/.well-known/jwks.json"),
        ("anyone", "/api/v1/products"),
        ("anyone", "/api/v1/products/search?q=kettle"),
        ("anyone", "/api/v1/products/kettle"),
        ("customer", "/api/v1/orders"),
        ("customer", "/api/v1/orders/{order}"),
        ("staff", "/api/v1/analytics/sales?group_by=day"),
    ],
)
def test_an_unknown_query_parameter_is_a_400_naming_it(
    api_client, auth_client, customer, staff, kettle, who, path
):
    client = {
        "anyone": api_client,
        "customer": auth_client(customer) if who == "customer" else None,
        "staff": auth_client(staff) if who == "staff" else None,
    }[who]
    url = path.format(customer=customer.id, order=uuid.uuid4())
    joiner = "&" if "?" in url else "?"

    response = client.get(f"{url}{joiner}colour=red&pgae=2")

    _assert_names(response, "colour", "pgae")


def test_the_known_query_parameters_still_work(auth_client, staff, customer):
    response = auth_client(staff).get("/api/v1/users?page=1&page_size=1")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


def test_an_unknown_body_field_of_a_bodiless_write_is_a_400_naming_it(
    auth_client, staff, kettle
):
    response = auth_client(staff).post(
        "/api/v1/products/kettle/archive", {"archived": False}, format="json"
    )

    _assert_names(response, "archived")
    kettle.refresh_from_db()
    assert (kettle.is_archived, kettle.version) == (False, 1)


def test_a_body_on_an_order_transition_is_a_400_naming_its_fields(auth_client, staff):
    response = auth_client(staff).post(
        f"/api/v1/orders/{uuid.uuid4()}/ship", {"carrier": "dhl"}, format="json"
    )

    _assert_names(response, "carrier")


def test_a_body_on_a_product_delete_is_a_400_and_deletes_nothing(
    auth_client, staff, kettle
):
    response = auth_client(staff).delete(
        "/api/v1/products/kettle", {"force": True}, format="json"
    )

    _assert_names(response, "force")
    assert Product.objects.filter(pk="kettle").exists()


def _etag(client) -> str:
    return client.get("/api/v1/products/kettle")["ETag"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/products/kettle/archive", None),
        ("delete", "/api/v1/products/kettle/archive", None),
        (
            "post",
            "/api/v1/products/kettle/stock-adjustments",
            {"delta": 1, "reason": "found"},
        ),
        ("patch", "/api/v1/products/kettle", {"name": "Steel Kettle"}),
        ("delete", "/api/v1/products/kettle", None),
    ],
)
def test_a_stale_if_match_is_412_on_every_product_write(
    auth_client, staff, kettle, method, path, body
):
    client = auth_client(staff)
    stale = _etag(client)
    Product.objects.filter(pk="kettle").update(version=2)  # another writer

    response = getattr(client, method)(path, body, format="json", HTTP_IF_MATCH=stale)

    assert response.status_code == 412, response.content
    assert response.json()["code"] == "precondition_failed"
    kettle_now = Product.objects.get(pk="kettle")
    assert (kettle_now.stock, kettle_now.is_archived, kettle_now.name) == (
        5,
        False,
        "Kettle",
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/api/v1/products/kettle/archive", None, 200),
        (
            "post",
            "/api/v1/products/kettle/stock-adjustments",
            {"delta": 1, "reason": "found"},
            201,
        ),
    ],
)
def test_a_current_if_match_lets_the_write_through(
    auth_client, staff, kettle, method, path, body, status
):
    client = auth_client(staff)
    current = _etag(client)

    response = getattr(client, method)(
        path, body, format="json", HTTP_IF_MATCH=f'"v0-0", {current}'
    )

    assert response.status_code == status, response.content
    assert response["ETag"] != current


def test_a_weak_if_match_never_matches(auth_client, staff, kettle):
    """If-Match compares strongly (RFC 9110 13.1.1)."""
    client = auth_client(staff)

    response = client.patch(
        "/api/v1/products/kettle",
        {"name": "Steel Kettle"},
        format="json",
        HTTP_IF_MATCH=f"W/{_etag(client)}",
    )

    assert response.status_code == 412
    assert response.json()["code"] == "precondition_failed"
    assert Product.objects.get(pk="kettle").name == "Kettle"


def test_if_match_on_a_write_that_is_not_conditional_is_a_400(auth_client, customer):
    client = auth_client(customer)
    etag = client.get(f"/api/v1/users/{customer.id}")["ETag"]

    response = client.patch(
        f"/api/v1/users/{customer.id}",
        {"name": "Ada King"},
        format="json",
        HTTP_IF_MATCH=etag,
    )

    assert response.status_code == 400
    assert response.json()["code"] == "if_match_not_supported"
    customer.refresh_from_db()
    assert customer.name == "Ada Lovelace"
