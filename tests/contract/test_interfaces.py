"""The same interface tests against the local binding and the remote one
(a real server process serving the contexts' internal API): callers get
the same DTOs and the same domain errors either way."""

import uuid
from decimal import Decimal

import httpx
import pytest

from apps.orders import interface as orders
from apps.products import interface as products
from apps.products.models import Product
from apps.users import interface as users
from conftest import subprocess_database_env
from tests.servers import ServerProcess

TOKEN = "contract-test-internal-token"  # noqa: S105 - a test value

# The server process sees only committed rows: no test transaction.
pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "orders", "catalog"]
)


@pytest.fixture(scope="module")
def context_server(django_db_setup, django_db_blocker):
    """One deployment serving users, products and orders on the test
    databases (its own CONTEXTS: all local)."""
    with django_db_blocker.unblock():
        env = subprocess_database_env()
    server = ServerProcess(
        {**env, "INTERNAL_API_TOKEN": TOKEN}, name="contexts"
    ).start()
    yield server
    server.close()


@pytest.fixture(params=["local", "remote"])
def binding(request, settings):
    if request.param == "remote":
        server = request.getfixturevalue("context_server")
        settings.INTERNAL_API_TOKEN = TOKEN
        settings.CONTEXTS = {
            **settings.CONTEXTS,
            **{
                name: {"mode": "remote", "instances": [server.url]}
                for name in ("users", "products", "orders")
            },
        }
    return request.param


def _product(pid: str, stock: int = 10, **fields) -> Product:
    values = {"name": f"Product {pid}", "price": Decimal("12.50"), "category": "Tea"}
    values.update(fields)
    return Product.objects.create(id=pid, stock=stock, **values)


def test_get_products_returns_dtos_and_leaves_unknown_ids_out(binding):
    _product("tea-1", name="Green tea")

    found = products.get_products({"tea-1": 1, "nope": 2})  # any iterable

    assert found == {
        "tea-1": products.ProductDTO(
            id="tea-1",
            name="Green tea",
            price=Decimal("12.50"),
            stock=10,
            category="Tea",
            is_archived=False,
        )
    }


def test_reserve_commit_return_round_trip(binding):
    _product("tea-1", stock=5)
    items = [products.ReservationItem("tea-1", 2)]

    held = products.reserve_stock(order_ref="order-1", items=iter(items))
    again = products.reserve_stock(order_ref="order-1", items=items)

    assert held.status == "active" and again == held
    assert held.items == (products.ReservationItem("tea-1", 2),)
    assert products.stock_levels(["tea-1"])["tea-1"] == products.StockLevel(
        available=3, held=2, sold=0
    )
    assert products.commit_stock(order_ref="order-1").status == "committed"
    assert products.return_stock(order_ref="order-1").status == "returned"
    assert Product.objects.get(id="tea-1").stock == 5


def test_shortages_come_back_typed(binding):
    _product("tea-1", stock=1)

    with pytest.raises(products.InsufficientStock) as caught:
        products.reserve_stock(
            order_ref="order-2",
            items=[
                products.ReservationItem("tea-1", 3),
                products.ReservationItem("ghost", 1),
            ],
        )

    assert set(caught.value.shortages) == {
        products.Shortage(product_id="tea-1", requested=3, available=1),
        products.Shortage(product_id="ghost", requested=1, available=0),
    }
    assert Product.objects.get(id="tea-1").stock == 1


def test_conflicts_and_unknown_reservations_are_the_same_errors(binding):
    _product("tea-1")
    products.reserve_stock(
        order_ref="order-3", items=[products.ReservationItem("tea-1", 1)]
    )

    with pytest.raises(products.ReservationConflict) as conflict:
        products.reserve_stock(
            order_ref="order-3", items=[products.ReservationItem("tea-1", 2)]
        )
    with pytest.raises(products.ReservationNotFound):
        products.commit_stock(order_ref="never-made")

    assert conflict.value.code == "reservation_conflict"
    assert products.release_stock(order_ref="never-made") is None
    assert products.release_stock(order_ref="order-3").status == "released"


def test_users_interface(binding, customer):
    assert users.get_user(customer.id) == users.UserDTO(
        id=customer.id,
        email=customer.email,
        name=customer.name,
        is_active=True,
        is_staff=False,
    )
    assert set(users.get_users([customer.id, uuid.uuid4()])) == {customer.id}
    with pytest.raises(users.UserNotFound):
        users.get_user(uuid.uuid4())


def test_orders_interface(binding, customer):
    _product("tea-1", stock=3)

    placed = orders.place_order(
        user_id=customer.id, items=[("tea-1", 2)], idempotency_key="k-1"
    )

    assert orders.get_order(placed.id) == placed
    assert placed.total_amount == Decimal("25.00") and placed.status == "pending"
    with pytest.raises(orders.ProductsUnavailable) as unavailable:
        orders.place_order(user_id=customer.id, items=[("ghost", 1)])
    assert unavailable.value.products == (
        orders.UnavailableProduct(product_id="ghost", reason="unknown"),
    )
    with pytest.raises(orders.IllegalTransition) as illegal:
        orders.cancel_order(order_id=placed.id, reason="test")
        orders.confirm_order(order_id=placed.id)
    assert illegal.value.current_status == "cancelled"
    with pytest.raises(orders.OrderNotFound):
        orders.get_order(uuid.uuid4())


# -- The internal API itself -----------------------------------------------------


def test_internal_api_refuses_callers_without_the_token(context_server):
    url = f"{context_server.url}/internal/v1/products/get_products"
    body = {"arguments": {"product_ids": []}}

    missing = httpx.post(url, json=body)
    wrong = httpx.post(url, json=body, headers={"X-Internal-Token": "guess"})
    right = httpx.post(url, json=body, headers={"X-Internal-Token": TOKEN})

    assert (missing.status_code, missing.json()["code"]) == (401, "not_authenticated")
    assert wrong.status_code == 401
    assert (right.status_code, right.json()) == (200, {"result": {}})


@pytest.mark.parametrize(
    ("path", "arguments", "status", "code"),
    [
        ("products/get_products", {"product_ids": 5}, 400, "validation_error"),
        ("products/get_products", {"nope": 1}, 400, "validation_error"),
        ("products/reserve_stock", {"order_ref": "x"}, 400, "validation_error"),
        ("products/drop_database", {}, 404, "not_found"),
        ("payments/charge", {}, 404, "not_found"),
    ],
)
def test_internal_api_rejects_bad_calls(context_server, path, arguments, status, code):
    answer = httpx.post(
        f"{context_server.url}/internal/v1/{path}",
        json={"arguments": arguments},
        headers={"X-Internal-Token": TOKEN},
    )

    assert (answer.status_code, answer.json()["code"]) == (status, code)


def test_no_internal_api_without_a_token_configured(client, settings):
    settings.INTERNAL_API_TOKEN = ""

    answer = client.post(
        "/internal/v1/products/get_products",
        data={"arguments": {"product_ids": []}},
        content_type="application/json",
        headers={"X-Internal-Token": ""},
    )

    assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
