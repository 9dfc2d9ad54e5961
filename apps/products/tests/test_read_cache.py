"""Product detail, list and search pages come from a cache that no write
leaves stale (ADRs 0026 and 0027).

Every writer test reads a page once (filling the cache), checks that the
next read costs the catalog no query, writes through one writer, and
checks that the next read shows the write; each runs for the product's
detail, a list page and a search page. Transactions really commit here,
so the invalidation after commit is the one exercised; every test runs
with Redis (production) and with locmem (``make run``).
"""

import threading
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache as django_cache
from django.core.management import call_command
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
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

pytestmark = [
    pytest.mark.django_db(databases=["default", "catalog"], transaction=True),
    pytest.mark.usefixtures("cache_backend"),
]

URL = "/api/v1/products/{}"
LIST = "/api/v1/products"
SEARCH = "/api/v1/products/search"


@dataclass(frozen=True)
class Page:
    """Where a client sees a product: its detail, or its entry in a list
    or search page (which it may drop out of)."""

    kind: str

    def get(self, client, product_id="kettle", q="kettle", **headers):
        if self.kind == "detail":
            return client.get(URL.format(product_id), headers=headers)
        if self.kind == "list":
            return client.get(LIST, {"page_size": 100}, headers=headers)
        return client.get(SEARCH, {"q": q, "page_size": 100}, headers=headers)

    def shown(self, response, product_id="kettle") -> dict | None:
        """The product as the response shows it; None if it does not."""
        if self.kind == "detail":
            if response.status_code == 404:
                return None
            assert response.status_code == 200, response.content
            return response.json()
        assert response.status_code == 200, response.content
        found = [p for p in response.json()["results"] if p["id"] == product_id]
        return found[0] if found else None


@pytest.fixture(params=["detail", "list", "search"])
def page(request):
    return Page(request.param)


@pytest.fixture
def kettle(db):
    return services.product_create(
        id="kettle",
        name="Kettle",
        price=Decimal("20.00"),
        stock=10,
        category="Kitchen",
    )


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [p["id"] for p in response.json()["results"]]


def look(page, client, product_id="kettle", **kwargs) -> dict | None:
    return page.shown(page.get(client, product_id, **kwargs), product_id)


def warm(page, client, product_id="kettle", **kwargs) -> dict | None:
    """Read twice: the second read comes from the cache, with no query, and
    is the same response. A missing product's detail (404) is not cached."""
    first = page.get(client, product_id, **kwargs)
    if page.kind == "detail" and first.status_code == 404:
        return None
    with CaptureQueriesContext(connections["catalog"]) as queries:
        second = page.get(client, product_id, **kwargs)
    assert second.status_code == first.status_code == 200
    assert second.content == first.content
    assert second["ETag"] == first["ETag"]
    assert len(queries) == 0, queries.captured_queries
    return page.shown(second, product_id)


# -- every writer, on every page ---------------------------------------------


def test_api_update_is_read_next(page, api_client, auth_client, staff, kettle):
    before = warm(page, api_client)

    response = auth_client(staff).patch(
        URL.format("kettle"), {"name": "Steel Kettle", "price": "24.50"}, format="json"
    )

    assert response.status_code == 200
    after = look(page, api_client)
    assert (after["name"], after["price"]) == ("Steel Kettle", "24.50")
    assert after["version"] == before["version"] + 1


def test_if_none_match_is_answered_from_the_cache_until_a_write(
    page, api_client, auth_client, staff, kettle
):
    warm(page, api_client)
    etag = page.get(api_client)["ETag"]

    with CaptureQueriesContext(connections["catalog"]) as queries:
        not_modified = page.get(api_client, **{"If-None-Match": etag})
    auth_client(staff).patch(URL.format("kettle"), {"price": "25.00"}, format="json")
    modified = page.get(api_client, **{"If-None-Match": etag})

    assert not_modified.status_code == 304
    assert not_modified["ETag"] == etag
    assert len(queries) == 0
    assert modified.status_code == 200
    assert page.shown(modified)["price"] == "25.00"
    assert modified["ETag"] != etag


def test_api_create_is_read_next(page, api_client, auth_client, staff, kettle):
    assert warm(page, api_client, "teapot", q="kettle") is None

    created = auth_client(staff).post(
        LIST,
        {
            "id": "teapot",
            "name": "Kettle Teapot",
            "price": "15.00",
            "stock": 3,
            "category": "Kitchen",
        },
        format="json",
    )

    assert created.status_code == 201
    assert look(page, api_client, "teapot", q="kettle")["name"] == "Kettle Teapot"


def test_admin_save_is_read_next(page, api_client, admin_client, kettle):
    warm(page, api_client)

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
    after = look(page, api_client)
    assert (after["name"], after["price"]) == ("Admin Kettle", "21.00")


def test_admin_archive_and_delete_are_read_next(page, api_client, admin_client, kettle):
    services.product_create(
        id="toaster", name="Kettle Toaster", price=Decimal("9.00"), category="Misc"
    )
    warm(page, api_client)
    warm(page, api_client, "toaster")

    archived = admin_client.post(
        "/admin/products/product/",
        {"action": "archive", "_selected_action": ["kettle"]},
    )
    deleted = admin_client.post(
        "/admin/products/product/",
        {"action": "delete_selected", "_selected_action": ["toaster"], "post": "yes"},
    )

    assert archived.status_code == deleted.status_code == 302
    assert look(page, api_client) is None
    assert look(page, api_client, "toaster") is None
    assert not Product.objects.filter(pk="toaster").exists()


def test_admin_stock_adjustment_is_read_next(page, api_client, admin_client, kettle):
    warm(page, api_client)

    response = admin_client.post(
        "/admin/products/stockadjustment/add/",
        {"product": "kettle", "delta": "-3", "reason": "damaged"},
    )

    assert response.status_code == 302
    assert look(page, api_client)["stock"] == 7


def test_api_stock_adjustment_is_read_next(
    page, api_client, auth_client, staff, kettle
):
    warm(page, api_client)

    response = auth_client(staff).post(
        URL.format("kettle") + "/stock-adjustments",
        {"delta": 5, "reason": "delivery"},
        format="json",
    )

    assert response.status_code == 201
    assert look(page, api_client)["stock"] == 15


def test_reserve_release_commit_and_return_are_read_next(page, api_client, kettle):
    warm(page, api_client)

    reserve_stock(order_ref="o1", items=[ReservationItem("kettle", 4)])
    assert look(page, api_client)["stock"] == 6

    release_stock(order_ref="o1")
    assert look(page, api_client)["stock"] == 10

    reserve_stock(order_ref="o2", items=[ReservationItem("kettle", 2)])
    warm(page, api_client)
    commit_stock(order_ref="o2")
    sold = look(page, api_client)
    assert (sold["stock"], sold["sold_count"]) == (8, 2)

    return_stock(order_ref="o2")
    returned = look(page, api_client)
    assert (returned["stock"], returned["sold_count"]) == (10, 0)


def test_sweeper_expiry_is_read_next(page, api_client, kettle):
    reserve_stock(order_ref="old", items=[ReservationItem("kettle", 3)])
    StockReservation.objects.filter(order_ref="old").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert warm(page, api_client)["stock"] == 7

    assert reservations_release_expired() == 1

    assert look(page, api_client)["stock"] == 10


def test_sweeper_repair_is_read_next(page, api_client, kettle):
    # A maker that died after taking its stock (as a crash leaves it).
    Product.objects.filter(pk="kettle").update(stock=8)
    StockReservation.objects.create(
        order_ref="crashed",
        items=[{"product_id": "kettle", "quantity": 2}],
        product_ids=["kettle"],
        applied=["kettle"],
        expires_at=timezone.now() + timedelta(minutes=15),
    )
    assert warm(page, api_client)["stock"] == 8

    repaired = reservations_repair_interrupted(
        older_than=timedelta(0), now=timezone.now() + timedelta(seconds=1)
    )

    assert repaired == 1
    assert look(page, api_client)["stock"] == 10


def test_archive_unarchive_and_delete_are_read_next(
    page, api_client, auth_client, staff, kettle
):
    staff_client = auth_client(staff)
    warm(page, api_client)

    assert staff_client.post(URL.format("kettle") + "/archive").status_code == 200
    assert look(page, api_client) is None

    assert staff_client.delete(URL.format("kettle") + "/archive").status_code == 200
    assert warm(page, api_client)["is_archived"] is False

    assert staff_client.delete(URL.format("kettle")).status_code == 204
    assert look(page, api_client) is None


def test_load_catalog_is_read_next(page, api_client):
    # Every demo description says "from our ... range".
    assert warm(page, api_client, "demo-0000001", q="range") is None

    call_command("load_catalog", "--count", "3", "--verbosity", "0")

    shown = warm(page, api_client, "demo-0000001", q="range")
    assert shown["id"] == "demo-0000001"


def test_a_read_between_a_write_and_its_commit_is_not_served_after_it(
    page, api_client, kettle
):
    """Another connection reads the old row while the write is uncommitted
    and caches it; the commit kills that entry."""
    warm(page, api_client)
    seen = {}

    def reader():
        try:
            seen["stock"] = look(page, api_client)["stock"]
        finally:
            connections.close_all()

    with transaction.atomic(using="catalog"):
        services.stock_adjust(product_id="kettle", delta=-4, reason="inventory")
        thread = threading.Thread(target=reader)
        thread.start()
        thread.join(timeout=30)

    assert seen["stock"] == 10  # uncommitted: the reader saw the old row
    assert look(page, api_client)["stock"] == 6


def test_a_lost_cache_serves_from_the_database(page, api_client, kettle):
    warm(page, api_client)
    cache.forget_all()

    with CaptureQueriesContext(connections["catalog"]) as queries:
        again = look(page, api_client)

    assert again["stock"] == 10
    assert len(queries) >= 1


# -- what only some pages have -----------------------------------------------


def test_staff_see_an_archived_product_from_the_same_detail_entry(
    api_client, auth_client, staff, kettle
):
    staff_client = auth_client(staff)
    staff_client.post(URL.format("kettle") + "/archive")

    assert api_client.get(URL.format("kettle")).status_code == 404
    with CaptureQueriesContext(connections["catalog"]) as queries:
        seen = staff_client.get(URL.format("kettle"))

    assert seen.json()["is_archived"] is True
    assert len(queries) == 0


def test_a_product_deleted_and_created_again_is_the_new_one(
    api_client, auth_client, staff, kettle
):
    detail = Page("detail")
    old = warm(detail, api_client)
    old_etag = detail.get(api_client)["ETag"]
    staff_client = auth_client(staff)
    staff_client.delete(URL.format("kettle"))

    created = staff_client.post(
        LIST,
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
    again = detail.get(api_client)
    assert again.json()["name"] == "New Kettle"
    assert again.json()["version"] == old["version"] == 1
    assert again["ETag"] == created["ETag"] != old_etag


@pytest.mark.parametrize(
    "write",
    [
        lambda: services.stock_adjust(product_id="kettle", delta=-10, reason="lost"),
        lambda: reserve_stock(order_ref="o1", items=[ReservationItem("kettle", 10)]),
    ],
    ids=["adjustment", "reservation"],
)
def test_stock_to_zero_drops_the_product_from_in_stock_pages(api_client, kettle, write):
    in_stock = {"in_stock": "true"}
    assert ids(api_client.get(LIST, in_stock)) == ["kettle"]
    searched = api_client.get(SEARCH, {"q": "kettle", **in_stock})
    assert searched.json()["count"] == 1

    write()

    assert api_client.get(LIST, in_stock).json() == {
        "count": 0,
        "count_capped": False,
        "next": None,
        "previous": None,
        "results": [],
    }
    assert api_client.get(SEARCH, {"q": "kettle", **in_stock}).json()["count"] == 0


def test_a_rename_changes_search_results(api_client, auth_client, staff, kettle):
    assert api_client.get(SEARCH, {"q": "teapot"}).json()["count"] == 0
    assert api_client.get(SEARCH, {"q": "kettle"}).json()["count"] == 1

    auth_client(staff).patch(URL.format("kettle"), {"name": "Teapot"}, format="json")

    assert ids(api_client.get(SEARCH, {"q": "teapot"})) == ["kettle"]
    assert api_client.get(SEARCH, {"q": "kettle"}).json()["count"] == 0


def test_search_by_word_matches_alone_is_cached_and_read_next(api_client, kettle):
    """Twenty matches or more: the words' page, with no typo fallback."""
    for n in range(20):
        services.product_create(
            id=f"k{n}", name=f"Kettle {n}", price=Decimal("5.00"), category="Misc"
        )
    query = {"q": "kettle", "ordering": "price", "page_size": 100}
    first = api_client.get(SEARCH, query)
    with CaptureQueriesContext(connections["catalog"]) as queries:
        second = api_client.get(SEARCH, query)
    assert first.json()["count"] == 21
    assert second.content == first.content
    assert len(queries) == 0

    services.stock_adjust(product_id="kettle", delta=-10, reason="lost")

    shown = {
        p["id"]: p["stock"] for p in api_client.get(SEARCH, query).json()["results"]
    }
    assert shown["kettle"] == 0


def test_each_address_has_its_own_page(api_client, kettle):
    """The next and previous links name the host and query the client
    used: a page cached for one address is not served for another."""
    services.product_create(
        id="toaster", name="Toaster", price=Decimal("9.00"), category="Misc"
    )
    query = {"page_size": 1, "ordering": "price"}

    local = api_client.get(LIST, query, headers={"Host": "localhost"})
    test = api_client.get(LIST, query)
    second = api_client.get(LIST, {**query, "page": 2})

    assert local.json()["next"] == (
        "http://localhost/api/v1/products?ordering=price&page=2&page_size=1"
    )
    assert test.json()["next"] == (
        "http://testserver/api/v1/products?ordering=price&page=2&page_size=1"
    )
    assert ids(test) == ["toaster"]
    assert ids(second) == ["kettle"]


def _stored(address: str) -> bool:
    return django_cache.get(cache.listing_key(address)) is not None


@pytest.mark.parametrize(
    "query",
    ["page_size=101", "min_price=-1", "ordering=bogus", "page=2", "q=kettle&page=9"],
)
def test_bad_input_and_missing_pages_are_never_cached(api_client, kettle, query):
    path = SEARCH if query.startswith("q=") else LIST
    good = api_client.get(path, {"q": "kettle"} if path == SEARCH else {})
    assert good.status_code == 200
    assert _stored(f"http://testserver{path}" + ("?q=kettle" if path == SEARCH else ""))

    bad = api_client.get(f"{path}?{query}")

    assert bad.status_code in (400, 404)
    assert bad["Content-Type"] == "application/problem+json"
    assert not _stored(f"http://testserver{path}?{query}")


def test_staff_archived_listings_are_not_cached_or_served_to_others(
    api_client, auth_client, staff, kettle
):
    staff_client = auth_client(staff)
    staff_client.post(URL.format("kettle") + "/archive")
    address = "http://testserver/api/v1/products?archived=true"

    for _ in range(2):
        with CaptureQueriesContext(connections["catalog"]) as queries:
            archived = staff_client.get(LIST, {"archived": "true"})
        assert ids(archived) == ["kettle"]
        assert len(queries) >= 1
    customer = api_client.get(LIST, {"archived": "true"})
    public = api_client.get(LIST)

    assert not _stored(address)
    assert customer.status_code == 400
    assert public.json()["results"] == []


def test_a_reader_that_stores_an_old_row_after_the_commit_is_not_served(page, kettle):
    """The classic race: a reader reads the old row, the writer commits and
    invalidates, then the reader stores what it read. Real threads, with
    the reader paused between its read and its store."""

    def cached(load):
        if page.kind == "detail":
            return cache.cached_product("kettle", load)
        return cache.cached_listing(f"http://testserver/{page.kind}", load)

    read_done, write_done = threading.Event(), threading.Event()
    results = {}

    def slow_load():
        value = Product.objects.get(pk="kettle").stock
        read_done.set()
        assert write_done.wait(timeout=30)
        return value

    def reader():
        try:
            results["first"] = cached(slow_load)
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
    assert cached(load) == 9
    assert cached(lambda: pytest.fail("not cached")) == 9


def test_a_cache_that_is_down_leaves_reads_and_writes_working(
    page, api_client, auth_client, staff, kettle, settings
):
    staff_client = auth_client(staff)
    settings.CACHES = {
        "default": {
            "BACKEND": "apps.core.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }

    assert look(page, api_client)["stock"] == 10
    updated = staff_client.patch(URL.format("kettle"), {"stock": 4}, format="json")

    assert updated.status_code == 200
    assert look(page, api_client)["stock"] == 4


def test_a_timeout_of_zero_turns_the_caches_off(page, api_client, kettle, settings):
    settings.CATALOG_LISTING_CACHE_SECONDS = 0
    settings.CATALOG_PRODUCT_CACHE_SECONDS = 0
    page.get(api_client)

    with CaptureQueriesContext(connections["catalog"]) as queries:
        again = look(page, api_client)

    assert again["stock"] == 10
    assert len(queries) >= 1
