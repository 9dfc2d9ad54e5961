import os

import pytest
from django.core.management import call_command

from apps.products.interface import ProductDTO, get_products
from apps.products.models import Product, StockAdjustment
from tests.subprocesses import run_manage

pytestmark = pytest.mark.django_db(databases=["default", "catalog"])


def test_load_catalog_is_deterministic_and_rerunnable():
    call_command("load_catalog", count=300, verbosity=0)
    first = list(Product.objects.order_by("id").values_list("id", "name", "price"))

    call_command("load_catalog", count=300, verbosity=0)

    assert len(first) == 300
    assert (
        list(Product.objects.order_by("id").values_list("id", "name", "price")) == first
    )
    categories = set(Product.objects.values_list("category", flat=True))
    assert len(categories) >= 6
    sample = Product.objects.get(pk="demo-0000001")
    assert sample.tags and sample.attributes and sample.images


def test_get_products_returns_dtos_for_known_ids(make_product):
    make_product(id="a", name="A", is_archived=True)

    found = get_products(["a", "missing"])

    assert list(found) == ["a"]
    assert isinstance(found["a"], ProductDTO)
    assert found["a"].is_archived is True


def test_product_dtos_carry_the_category(make_product):
    make_product(id="a", category="Kitchen")
    make_product(id="b", category="Garden")

    found = get_products(["b", "a"])

    assert list(found) == ["b", "a"]
    assert {pk: dto.category for pk, dto in found.items()} == {
        "a": "Kitchen",
        "b": "Garden",
    }


def test_operator_adjusts_stock_in_the_admin_with_a_reason(
    admin_client, staff, make_product
):
    product = make_product(id="kettle", stock=5)

    response = admin_client.post(
        "/admin/products/stockadjustment/add/",
        {"product": "kettle", "delta": "-2", "reason": "damaged in transit"},
    )

    assert response.status_code == 302
    product.refresh_from_db()
    assert product.stock == 3
    adjustment = StockAdjustment.objects.get(product_id="kettle")
    assert (adjustment.delta, adjustment.stock_after) == (-2, 3)
    assert adjustment.reason == "damaged in transit"
    assert adjustment.actor_email == staff.email


def test_admin_product_search_and_stock_filter(admin_client, make_product):
    make_product(id="kettle", name="Borealis Kettle", stock=0)
    make_product(id="novel", name="Winter Novel", stock=40)

    found = admin_client.get("/admin/products/product/?q=kettle")
    out_of_stock = admin_client.get("/admin/products/product/?stock_level=out")

    assert found.status_code == 200
    assert b"Borealis Kettle" in found.content
    assert b"Winter Novel" not in found.content
    assert b"Borealis Kettle" in out_of_stock.content
    assert b"Winter Novel" not in out_of_stock.content


def test_admin_archive_action(admin_client, make_product):
    make_product(id="kettle")

    admin_client.post(
        "/admin/products/product/",
        {"action": "archive", "_selected_action": ["kettle"]},
    )

    assert Product.objects.get(pk="kettle").is_archived is True


@pytest.mark.mongodb
@pytest.mark.skipif(not os.environ.get("MONGODB_URI"), reason="needs MONGODB_URI")
def test_catalog_runs_on_mongodb():
    """Migrate, load, search and reserve with the catalog on MongoDB."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "CATALOG_DATABASE_URL": os.environ["MONGODB_URI"],
    }
    script = (
        "from apps.products import search, selectors, interface as i;"
        "ids = search.product_search(query='kettle',"
        " filters=selectors.ProductFilters());"
        "top = selectors.products_in_order(ids[:3]);"
        "assert top and all('ettle' in p.name for p in top), top;"
        "i.reserve_stock(order_ref='mongo-test',"
        " items=[i.ReservationItem(top[0].id, 1)]);"
        "assert i.release_stock(order_ref='mongo-test').status == 'released'"
    )
    for args in (
        ["migrate", "--database", "catalog"],
        ["load_catalog", "--count", "200"],
        ["shell", "-c", script],
    ):
        result = run_manage(*args, env=env)
        assert result.returncode == 0, result.stderr


MONGO_INDEX_SCRIPT = """
from django.db import connections
from apps.products import search, selectors, views
from apps.products.models import Product
collection = connections["catalog"].get_collection(Product._meta.db_table)
names = {index["name"] for index in collection.list_indexes()}
wanted = {"product_category_price", "product_price", "product_created",
          "product_sold", "product_text", "product_tags"}
assert wanted <= names, sorted(names)
# The filtered list page of the bench reads an index, not the collection.
plan = collection.find(
    {"is_archived": False, "category": "Kitchen", "stock": {"$gt": 0}}
).sort([("price", 1), ("_id", 1)]).explain()
assert "IXSCAN" in str(plan["queryPlanner"]["winningPlan"]), plan
filters = selectors.ProductFilters(category="Kitchen", in_stock=True)
page = selectors.product_page(
    selectors.products_filtered(filters), order=("price", "id"), offset=0, size=5
)
assert page.products and page.count > 0
prices = [p.price for p in page.products]
assert prices == sorted(prices)
assert search.product_search(query="the of", filters=filters) == []
"""


@pytest.mark.mongodb
@pytest.mark.skipif(not os.environ.get("MONGODB_URI"), reason="needs MONGODB_URI")
def test_catalog_queries_on_mongodb_read_their_indexes():
    """The indexes of the list and search queries exist on MongoDB (the
    models' Meta.indexes and migration 0002's text index), and the filtered
    list reads one."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "CATALOG_DATABASE_URL": os.environ["MONGODB_URI"],
    }
    for args in (
        ["migrate", "--database", "catalog"],
        ["load_catalog", "--count", "200"],
        ["shell", "-c", MONGO_INDEX_SCRIPT],
    ):
        result = run_manage(*args, env=env)
        assert result.returncode == 0, result.stderr


def test_admin_refuses_an_adjustment_below_zero(admin_client, make_product):
    product = make_product(id="kettle", stock=1)

    response = admin_client.post(
        "/admin/products/stockadjustment/add/",
        {"product": "kettle", "delta": "-2", "reason": "lost"},
    )

    assert response.status_code == 200
    assert b"Only 1 in stock" in response.content
    product.refresh_from_db()
    assert product.stock == 1
    assert not StockAdjustment.objects.exists()


def test_admin_edit_goes_through_the_services(admin_client, make_product):
    product = make_product(id="kettle", name="Kettle", stock=4, tags=["home"])

    response = admin_client.post(
        "/admin/products/product/kettle/change/",
        {
            "name": "Steel Kettle",
            "description": "",
            "price": "12.00",
            "category": "Kitchen",
            "tags": "Home, Steel",
            "images": "",
            "attributes": "{}",
        },
    )

    assert response.status_code == 302, response.content[:3000]
    product.refresh_from_db()
    assert (product.name, product.tags, product.stock) == (
        "Steel Kettle",
        ["home", "steel"],
        4,
    )
    assert product.version == 2


def test_admin_delete_keeps_a_reserved_product(admin_client, make_product):
    from apps.products.interface import ReservationItem, reserve_stock

    make_product(id="kettle", stock=3)
    reserve_stock(order_ref="o1", items=[ReservationItem("kettle", 1)])

    admin_client.post("/admin/products/product/kettle/delete/", {"post": "yes"})

    assert Product.objects.filter(pk="kettle").exists()


@pytest.mark.parametrize(
    "fields",
    [
        {"attributes": {"colour": "\ud800"}},
        {"attributes": {"note": "a\x00b"}},
        {"tags": ["\udfff"]},
        {"images": ["https://img.example.com/\x00.png"]},
    ],
)
def test_services_refuse_unstorable_text_in_json_fields(fields):
    # What the admin and the commands call: the rule is the model's.
    from apps.core.errors import InvalidInput
    from apps.products.services import product_create

    with pytest.raises(InvalidInput) as raised:
        product_create(
            id="kettle", name="Kettle", price="1.00", category="Kitchen", **fields
        )

    assert set(raised.value.errors) == set(fields)
    assert not Product.objects.exists()


def test_admin_refuses_a_lone_surrogate_and_shows_the_form_again(
    admin_client, make_product
):
    make_product(id="kettle", name="Kettle")

    response = admin_client.post(
        "/admin/products/product/kettle/change/",
        {
            "name": "Kettle",
            "description": "",
            "price": "12.00",
            "category": "Kitchen",
            "tags": "",
            "images": "",
            "attributes": '{"colour": "\\udc80"}',
        },
    )

    assert response.status_code == 200  # the form again, with the error
    page = response.content.decode()
    assert "errornote" in page
    assert "\\udc80" in page
    assert Product.objects.get(pk="kettle").attributes == {}


@pytest.mark.parametrize("value", ["1e400", "-Infinity", "NaN"])
def test_admin_refuses_a_non_finite_number_and_shows_the_form_again(
    admin_client, make_product, value
):
    make_product(id="kettle", name="Kettle")
    form = {
        "name": "Kettle",
        "description": "",
        "price": "12.00",
        "category": "Kitchen",
        "tags": "",
        "images": "",
        "attributes": f'{{"size": {value}}}',
    }

    changed = admin_client.post("/admin/products/product/kettle/change/", form)
    added = admin_client.post("/admin/products/product/add/", {**form, "id": "new"})

    for response in (changed, added):
        assert response.status_code == 200  # the form again, with the error
        assert "errornote" in response.content.decode()
    assert Product.objects.get(pk="kettle").attributes == {}
    assert not Product.objects.filter(pk="new").exists()


def test_admin_offers_no_way_to_delete_or_edit_a_reservation(
    admin_client, make_product
):
    """No operator action may lose or create stock: an active reservation
    deleted or edited by hand would never give its stock back."""
    from apps.products.interface import ReservationItem, reserve_stock
    from apps.products.models import StockReservation

    make_product(id="kettle", stock=3)
    reserve_stock(order_ref="o1", items=[ReservationItem("kettle", 2)])
    reservation = StockReservation.objects.get(order_ref="o1")
    url = f"/admin/products/stockreservation/{reservation.pk}"

    shown = admin_client.get(f"{url}/change/")
    deleted = admin_client.post(f"{url}/delete/", {"post": "yes"})
    bulk = admin_client.post(
        "/admin/products/stockreservation/",
        {
            "action": "delete_selected",
            "_selected_action": [reservation.pk],
            "post": "yes",
        },
    )
    edited = admin_client.post(f"{url}/change/", {"status": "released"})

    assert shown.status_code == 200
    assert b"Delete" not in shown.content
    assert deleted.status_code == 403
    assert edited.status_code == 403
    assert bulk.status_code in (200, 302)
    reservation.refresh_from_db()
    assert reservation.status == "active"
    assert Product.objects.get(pk="kettle").stock == 1
