"""Product detail comes from a cache that no write leaves stale (ADR 0026).

Every test reads a product once (filling the cache), checks that the next
read costs the catalog no query, writes through one writer, and checks
that the next read shows the write. Transactions really commit here, so
the invalidation after commit is the one exercised; every test runs with
Redis (production) and with locmem (``make run``).
"""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connections, transaction
from django.utils import timezone

from apps.products import cache, services
from apps.products.interface import (
    ReservationItem,
    commit_stock,
    release_stock,
    reserve_stock,
    return_stock,
)
from apps.products.models import Product, StockReservation
from apps.products.reservations import (
    reservations_release_expired,
    reservations_repair_interrupted,
)

pytestmark = pytest.mark.django_db(databases=["default", "catalog"], transaction=True)

URL = "/api/v1/products/{}"


@pytest.fixture(autouse=True, params=["redis", "locmem"])
def backend(request, settings):
    if request.param == "locmem":
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
        }
    cache.forget_all()
    return request.param


@pytest.fixture
def kettle(db):
    return services.product_create(
        id="kettle",
        name="Kettle",
        price=Decimal("20.00"),
        stock=10,
        category="Kitchen",
    )


@pytest.fixture
def admin_client(client, staff):
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)
    return client


def read(client, product_id="kettle", **headers):
    return client.get(URL.format(product_id), headers=headers)


def warm(client, product_id="kettle") -> dict:
    """Read twice: the second read comes from the cache, with no query."""
    first = read(client, product_id)
    assert first.status_code == 200
    catalog = connections["catalog"]
    with CountQueries(catalog) as queries:
        second = read(client, product_id)
    assert second.status_code == 200
    assert second.json() == first.json()
    assert second["ETag"] == first["ETag"]
    assert queries.count == 0, queries.sql
    return first.json()


class CountQueries:
    def __init__(self, connection):
        self.connection, self.sql = connection, []

    def __enter__(self):
        self.wrapper = self.connection.execute_wrapper(self._record)
        self.wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self.wrapper.__exit__(*exc)

    def _record(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)

    @property
    def count(self):
        return len(self.sql)


def test_api_update_is_read_next(api_client, auth_client, staff, kettle):
    before = warm(api_client)

    response = auth_client(staff).patch(
        URL.format("kettle"), {"name": "Steel Kettle"}, format="json"
    )

    assert response.status_code == 200
    after = read(api_client)
    assert after.json()["name"] == "Steel Kettle"
    assert after.json()["version"] == before["version"] + 1
    assert after["ETag"] == response["ETag"]


def test_if_none_match_is_answered_from_the_cache_until_a_write(
    api_client, auth_client, staff, kettle
):
    warm(api_client)
    etag = read(api_client)["ETag"]

    with CountQueries(connections["catalog"]) as queries:
        not_modified = read(api_client, **{"If-None-Match": etag})
    auth_client(staff).patch(URL.format("kettle"), {"price": "25.00"}, format="json")
    modified = read(api_client, **{"If-None-Match": etag})

    assert not_modified.status_code == 304
    assert not_modified["ETag"] == etag
    assert queries.count == 0
    assert modified.status_code == 200
    assert modified.json()["price"] == "25.00"
    assert modified["ETag"] != etag


def test_admin_save_is_read_next(api_client, admin_client, kettle):
    warm(api_client)

    response = admin_client.post(
        "/admin/products/product/kettle/change/",
        {
            "name": "Admin Kettle",
            "description": "",
            "price": "21.00",
            "category": "Kitchen",
            "tags": "",
            "images": "",
            "attributes": "{}",
        },
    )

    assert response.status_code == 302
    assert read(api_client).json()["name"] == "Admin Kettle"


def test_admin_stock_adjustment_is_read_next(api_client, admin_client, kettle):
    warm(api_client)

    response = admin_client.post(
        "/admin/products/stockadjustment/add/",
        {"product": "kettle", "delta": "-3", "reason": "damaged"},
    )

    assert response.status_code == 302
    assert read(api_client).json()["stock"] == 7


def test_api_stock_adjustment_is_read_next(api_client, auth_client, staff, kettle):
    warm(api_client)

    response = auth_client(staff).post(
        URL.format("kettle") + "/stock-adjustments",
        {"delta": 5, "reason": "delivery"},
        format="json",
    )

    assert response.status_code == 201
    assert read(api_client).json()["stock"] == 15


def test_reserve_release_commit_and_return_are_read_next(api_client, kettle):
    warm(api_client)

    reserve_stock(order_ref="o1", items=[ReservationItem("kettle", 4)])
    assert read(api_client).json()["stock"] == 6

    release_stock(order_ref="o1")
    assert read(api_client).json()["stock"] == 10

    reserve_stock(order_ref="o2", items=[ReservationItem("kettle", 2)])
    warm(api_client)
    commit_stock(order_ref="o2")
    sold = read(api_client).json()
    assert (sold["stock"], sold["sold_count"]) == (8, 2)

    return_stock(order_ref="o2")
    returned = read(api_client).json()
    assert (returned["stock"], returned["sold_count"]) == (10, 0)


def test_sweeper_expiry_is_read_next(api_client, kettle):
    reserve_stock(order_ref="old", items=[ReservationItem("kettle", 3)])
    StockReservation.objects.filter(order_ref="old").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert warm(api_client)["stock"] == 7

    assert reservations_release_expired() == 1

    assert read(api_client).json()["stock"] == 10


def test_sweeper_repair_is_read_next(api_client, kettle):
    # A maker that died after taking its stock (as a crash leaves it).
    Product.objects.filter(pk="kettle").update(stock=8)
    StockReservation.objects.create(
        order_ref="crashed",
        items=[{"product_id": "kettle", "quantity": 2}],
        product_ids=["kettle"],
        applied=["kettle"],
        expires_at=timezone.now() + timedelta(minutes=15),
    )
    assert warm(api_client)["stock"] == 8

    repaired = reservations_repair_interrupted(
        older_than=timedelta(0), now=timezone.now() + timedelta(seconds=1)
    )

    assert repaired == 1
    assert read(api_client).json()["stock"] == 10


def test_archive_unarchive_and_delete_are_read_next(
    api_client, auth_client, staff, kettle
):
    staff_client = auth_client(staff)
    warm(api_client)

    assert staff_client.post(URL.format("kettle") + "/archive").status_code == 200
    assert read(api_client).status_code == 404
    # Staff still see it, archived, from the same entry.
    assert read(staff_client).json()["is_archived"] is True

    assert staff_client.delete(URL.format("kettle") + "/archive").status_code == 200
    assert warm(api_client)["is_archived"] is False

    assert staff_client.delete(URL.format("kettle")).status_code == 204
    assert read(api_client).status_code == 404


def test_a_product_deleted_and_created_again_is_the_new_one(
    api_client, auth_client, staff, kettle
):
    old = warm(api_client)
    old_etag = read(api_client)["ETag"]
    staff_client = auth_client(staff)
    staff_client.delete(URL.format("kettle"))

    created = staff_client.post(
        "/api/v1/products",
        {
            "id": "kettle",
            "name": "New Kettle",
            "price": "30.00",
            "stock": 1,
            "category": "Kitchen",
        },
        format="json",
    )

    assert created.status_code == 201
    again = read(api_client)
    assert again.json()["name"] == "New Kettle"
    assert again.json()["version"] == old["version"] == 1
    assert again["ETag"] == created["ETag"] != old_etag


def test_load_catalog_is_read_next(api_client):
    assert read(api_client, "demo-0000001").status_code == 404

    call_command("load_catalog", "--count", "3", "--verbosity", "0")

    assert warm(api_client, "demo-0000001")["id"] == "demo-0000001"


def test_a_read_between_a_write_and_its_commit_is_not_served_after_it(
    api_client, kettle
):
    """Another connection reads the old row while the write is uncommitted
    and caches it; the commit kills that entry."""
    warm(api_client)
    seen = {}

    def reader():
        try:
            seen["stock"] = read(api_client).json()["stock"]
        finally:
            connections.close_all()

    with transaction.atomic(using="catalog"):
        services.stock_adjust(product_id="kettle", delta=-4, reason="inventory")
        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(timeout=30)

    assert seen["stock"] == 10  # uncommitted: the reader saw the old row
    assert read(api_client).json()["stock"] == 6


def test_a_reader_that_stores_an_old_row_after_the_commit_is_not_served(kettle):
    """The classic race: a reader reads the old row, the writer commits and
    invalidates, then the reader stores what it read. Real threads, with
    the reader paused between its read and its store."""
    read_done, write_done = threading.Event(), threading.Event()
    results = {}

    def slow_load():
        value = Product.objects.get(pk="kettle").stock
        read_done.set()
        assert write_done.wait(timeout=30)
        return value

    def reader():
        try:
            results["first"] = cache.cached("kettle", slow_load)
        finally:
            connections.close_all()

    thread = threading.Thread(target=reader)
    thread.start()
    assert read_done.wait(timeout=30)
    services.stock_adjust(product_id="kettle", delta=-1, reason="broken")
    write_done.set()
    thread.join(timeout=30)

    def load():
        return Product.objects.get(pk="kettle").stock

    assert results["first"] == 10  # what it read before the write
    assert cache.cached("kettle", load) == 9
    assert cache.cached("kettle", lambda: pytest.fail("not cached")) == 9


def test_a_lost_cache_serves_from_the_database(api_client, kettle, backend):
    warm(api_client)
    cache.forget_all()

    with CountQueries(connections["catalog"]) as queries:
        again = read(api_client)

    assert again.json()["stock"] == 10
    assert queries.count == 1
