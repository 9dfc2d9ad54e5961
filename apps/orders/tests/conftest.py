"""Fixtures of the orders tests: catalog products (made through the
catalog's API: a context's tests import no other context's modules) and a
client that places orders."""

import uuid
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from apps.orders.tests.support import ORDERS_URL

PRODUCTS_URL = "/api/v1/products"


@pytest.fixture
def catalog_client():
    """The catalog's API as an operator. Authentication is forced with a
    stand-in staff user, so no password is hashed for the set-up."""
    client = APIClient()
    operator = SimpleNamespace(
        id=uuid.uuid4(),
        email="catalog-setup@example.com",
        is_staff=True,
        is_authenticated=True,
    )
    client.force_authenticate(user=operator)
    return client


@pytest.fixture
def make_product(db, catalog_client):
    counter = {"n": 0}

    def make(*, archived=False, **fields) -> dict:
        counter["n"] += 1
        values = {
            "id": f"p{counter['n']}",
            "name": f"Product {counter['n']}",
            "price": "10.00",
            "stock": 10,
            "category": "Misc",
        }
        values.update(fields)
        response = catalog_client.post(PRODUCTS_URL, values, format="json")
        assert response.status_code == 201, response.json()
        if archived:
            archive = catalog_client.post(f"{PRODUCTS_URL}/{values['id']}/archive")
            assert archive.status_code == 200, archive.json()
        return response.json()

    return make


@pytest.fixture
def kettle(make_product):
    return make_product(
        id="kettle", name="Borealis Kettle", price="39.90", category="Kitchen"
    )


@pytest.fixture
def mug(make_product):
    return make_product(
        id="mug", name="Stoneware Mug", price="4.25", stock=100, category="Kitchen"
    )


@pytest.fixture
def place(auth_client):
    """POST an order as ``user`` (logged in once per test); returns the
    response."""
    clients = {}

    def post(user, body, *, key=None, client=None):
        if client is None:
            if user.pk not in clients:
                clients[user.pk] = auth_client(user)
            client = clients[user.pk]
        headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
        return client.post(ORDERS_URL, body, format="json", **headers)

    return post
