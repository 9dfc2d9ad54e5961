from decimal import Decimal

import pytest

from apps.products.models import Product, StockAdjustment
from tests.problems import assert_problem

pytestmark = pytest.mark.django_db(databases=["default", "catalog"])

URL = "/api/v1/products"
NEW = {
    "name": "Borealis Kettle",
    "description": "Boils water.",
    "price": "39.90",
    "stock": 12,
    "category": "Kitchen",
    "tags": ["Home", "coffee"],
    "images": ["https://img.example.com/kettle.jpg"],
    "attributes": {"voltage": 230, "colour": "red"},
}


def test_staff_creates_product_with_generated_id_etag_and_location(staff, auth_client):
    response = auth_client(staff).post(URL, NEW, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert len(body["id"]) == 32
    assert body["price"] == "39.90"
    assert body["tags"] == ["coffee", "home"]
    assert response["Location"] == f"{URL}/{body['id']}"
    assert response["ETag"] == f'"v1-{Product.objects.get(pk=body["id"]).incarnation}"'
    product = Product.objects.get(pk=body["id"])
    assert product.price == Decimal("39.90")
    assert product.attributes == {"voltage": 230, "colour": "red"}
    initial = StockAdjustment.objects.get(product_id=product.pk)
    assert (initial.delta, initial.actor_email) == (12, staff.email)


def test_create_with_given_id_and_duplicate_is_409(staff, auth_client):
    client = auth_client(staff)

    first = client.post(URL, {**NEW, "id": "kettle-1"}, format="json")
    again = client.post(URL, {**NEW, "id": "kettle-1"}, format="json")

    assert first.status_code == 201
    assert_problem(again, 409, "product_conflict")
    assert Product.objects.count() == 1


def test_anonymous_writes_are_401_and_customer_writes_403(
    api_client, customer, auth_client, make_product
):
    product = make_product()

    assert_problem(api_client.post(URL, NEW, format="json"), 401, "not_authenticated")
    client = auth_client(customer)
    assert_problem(client.post(URL, NEW, format="json"), 403, "permission_denied")
    assert (
        client.patch(f"{URL}/{product.id}", {"stock": 0}, format="json").status_code
        == 403
    )
    assert_problem(client.delete(f"{URL}/{product.id}"), 403, "permission_denied")
    assert Product.objects.count() == 1
    product.refresh_from_db()
    assert product.stock == 10


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": "-1.00"}, "price"),
        ({"price": "1.999"}, "price"),
        ({"price": "abc"}, "price"),
        ({"stock": -1}, "stock"),
        ({"stock": 1.5}, "stock"),
        ({"name": "x" * 201}, "name"),
        ({"name": 12}, "name"),
        ({"category": ""}, "category"),
        ({"description": "d" * 5001}, "description"),
        ({"tags": ["ok", 5]}, "tags"),
        ({"tags": "not-a-list"}, "tags"),
        ({"tags": ["t" * 51]}, "tags"),
        ({"images": ["not a url"]}, "images"),
        ({"images": ["javascript:alert(1)"]}, "images"),
        ({"images": ["ftp://example.com/a.png"]}, "images"),
        ({"attributes": {"bad key": 1}}, "attributes"),
        ({"attributes": {"nested": {"a": 1}}}, "attributes"),
        ({"attributes": ["list"]}, "attributes"),
        ({"id": "has space"}, "id"),
        ({"id": "search"}, "id"),
        ({"sold_count": 5}, "sold_count"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_product_input_is_400_naming_the_field(staff, auth_client, change, field):
    response = auth_client(staff).post(URL, {**NEW, **change}, format="json")

    assert_problem(response, 400, "validation_error")
    assert response["Content-Type"] == "application/problem+json"
    fields = {e["field"].split("[")[0].split(".")[0] for e in response.json()["errors"]}
    assert field in fields
    assert Product.objects.count() == 0


@pytest.mark.parametrize(
    "attributes",
    # NaN and Infinity themselves are no JSON: the parser refuses them.
    ['{"size": 1e400}', '{"size": -1e400}'],
)
def test_a_non_finite_attribute_is_400_naming_it_on_create_and_update(
    staff, auth_client, make_product, attributes
):
    # Python's JSON parser reads an overflowing number as infinity, which
    # no engine stores in JSON.
    product = make_product(id="kettle")
    client = auth_client(staff)
    body = '{"name": "Kettle", "price": "1.00", "stock": 1, "category": "Kitchen", '

    created = client.generic(
        "POST", URL, body + f'"attributes": {attributes}}}', "application/json"
    )
    updated = client.generic(
        "PATCH", f"{URL}/kettle", f'{{"attributes": {attributes}}}', "application/json"
    )

    for response in (created, updated):
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "validation_error"
        assert [e["field"] for e in response.json()["errors"]] == ["attributes"]
    assert Product.objects.count() == 1
    product.refresh_from_db()
    assert (product.attributes, product.version) == ({}, 1)


@pytest.mark.parametrize(
    "attributes",
    ['{"colour": "\\ud800"}', '{"colour": "red\\udfff"}'],
)
def test_a_lone_surrogate_in_an_attribute_is_400_not_500(
    staff, auth_client, make_product, attributes
):
    # JSON can spell a lone surrogate; PostgreSQL's jsonb refuses it.
    product = make_product(id="kettle")
    client = auth_client(staff)
    body = '{"name": "Kettle", "price": "1.00", "stock": 1, "category": "Kitchen", '

    created = client.generic(
        "POST", URL, body + f'"attributes": {attributes}}}', "application/json"
    )
    updated = client.generic(
        "PATCH", f"{URL}/kettle", f'{{"attributes": {attributes}}}', "application/json"
    )

    for response in (created, updated):
        assert response.status_code == 400, response.content
        assert response.json()["code"] == "validation_error"
        assert [e["field"] for e in response.json()["errors"]] == ["attributes"]
    assert Product.objects.count() == 1
    product.refresh_from_db()
    assert (product.attributes, product.version) == ({}, 1)


def test_detail_has_etag_and_if_none_match_gives_304(api_client, make_product):
    product = make_product()

    first = api_client.get(f"{URL}/{product.id}")
    cached = api_client.get(f"{URL}/{product.id}", HTTP_IF_NONE_MATCH=first["ETag"])

    assert first.status_code == 200
    assert first.json()["id"] == product.id
    assert cached.status_code == 304
    assert cached.content == b""


def test_a_product_created_again_under_its_id_matches_no_old_etag(
    staff, auth_client, api_client
):
    """Deleted and created again, a product starts at version 1 again; an
    ETag of the old one is neither a 304 nor a passing If-Match."""
    client = auth_client(staff)
    client.post(URL, {**NEW, "id": "reborn", "name": "Old"}, format="json")
    old_etag = api_client.get(f"{URL}/reborn")["ETag"]
    client.delete(f"{URL}/reborn", HTTP_IF_MATCH=old_etag)
    client.post(URL, {**NEW, "id": "reborn", "name": "New"}, format="json")

    cached = api_client.get(f"{URL}/reborn", HTTP_IF_NONE_MATCH=old_etag)
    changed = client.patch(
        f"{URL}/reborn", {"name": "Edit"}, format="json", HTTP_IF_MATCH=old_etag
    )
    deleted = client.delete(f"{URL}/reborn", HTTP_IF_MATCH=old_etag)

    assert cached.status_code == 200
    assert cached.json()["name"] == "New"
    assert cached["ETag"] != old_etag
    assert changed.status_code == 412
    assert changed.json()["code"] == "precondition_failed"
    assert deleted.status_code == 412
    assert Product.objects.get(pk="reborn").name == "New"


@pytest.mark.parametrize(
    "if_match", ['"v1"', '"v1-"', '"v1-XYZ"', "v1-0123456789abcdef", '"1-0"']
)
def test_if_match_that_names_no_revision_is_412(
    staff, auth_client, make_product, if_match
):
    product = make_product(name="Original")

    response = auth_client(staff).patch(
        f"{URL}/{product.id}",
        {"name": "Changed"},
        format="json",
        HTTP_IF_MATCH=if_match,
    )

    assert response.status_code == 412
    assert response.json()["code"] == "precondition_failed"


def test_unknown_product_is_404(api_client):
    response = api_client.get(f"{URL}/nope")

    assert response.status_code == 404
    assert response.json()["code"] == "product_not_found"


def test_if_match_with_a_stale_version_is_412_and_nothing_changes(
    staff, auth_client, make_product
):
    product = make_product(name="Original")
    client = auth_client(staff)
    etag = client.get(f"{URL}/{product.id}")["ETag"]
    first = client.patch(
        f"{URL}/{product.id}", {"name": "Operator A"}, format="json", HTTP_IF_MATCH=etag
    )

    second = client.patch(
        f"{URL}/{product.id}", {"name": "Operator B"}, format="json", HTTP_IF_MATCH=etag
    )

    assert first.status_code == 200
    assert first["ETag"] != etag
    assert second.status_code == 412
    assert second.json()["code"] == "precondition_failed"
    product.refresh_from_db()
    assert product.name == "Operator A"


def test_put_replaces_and_records_stock_change(staff, auth_client, make_product):
    product = make_product(stock=5, tags=["old"])

    response = auth_client(staff).put(
        f"{URL}/{product.id}", {**NEW, "stock": 8}, format="json"
    )

    assert response.status_code == 200, response.json()
    product.refresh_from_db()
    assert (product.name, product.stock, product.tags) == (
        "Borealis Kettle",
        8,
        ["coffee", "home"],
    )
    adjustment = StockAdjustment.objects.get(product_id=product.id)
    assert adjustment.delta == 3
    assert adjustment.stock_after == 8


def test_put_missing_fields_is_400_and_id_cannot_change(
    staff, auth_client, make_product
):
    product = make_product()
    client = auth_client(staff)

    missing = client.put(f"{URL}/{product.id}", {"name": "only"}, format="json")
    renamed = client.patch(f"{URL}/{product.id}", {"id": "other"}, format="json")

    assert_problem(missing, 400, "validation_error")
    assert_problem(renamed, 400, "validation_error")
    assert Product.objects.filter(pk=product.id).exists()


def test_archived_products_are_hidden_from_customers_but_kept(
    api_client, staff, auth_client, make_product
):
    product = make_product()
    client = auth_client(staff)

    archived = client.post(f"{URL}/{product.id}/archive")

    assert archived.status_code == 200
    assert archived.json()["is_archived"] is True
    assert_problem(api_client.get(f"{URL}/{product.id}"), 404, "product_not_found")
    assert api_client.get(URL).json()["count"] == 0
    assert client.get(f"{URL}/{product.id}").status_code == 200
    assert client.get(f"{URL}?archived=true").json()["count"] == 1
    assert_problem(api_client.get(f"{URL}?archived=true"), 400, "validation_error")
    assert client.delete(f"{URL}/{product.id}/archive").json()["is_archived"] is False


def test_delete_removes_the_product(staff, auth_client, make_product):
    product = make_product()

    response = auth_client(staff).delete(f"{URL}/{product.id}")

    assert response.status_code == 204
    assert not Product.objects.filter(pk=product.id).exists()


def test_delete_with_open_reservation_is_409(staff, auth_client, make_product):
    from apps.products.interface import ReservationItem, reserve_stock

    product = make_product(stock=3)
    reserve_stock(order_ref="order-1", items=[ReservationItem(product.id, 1)])

    response = auth_client(staff).delete(f"{URL}/{product.id}")

    assert_problem(response, 409, "product_conflict")
    assert Product.objects.filter(pk=product.id).exists()


def test_stock_adjustment_endpoint_records_reason(staff, auth_client, make_product):
    product = make_product(stock=4)
    client = auth_client(staff)

    added = client.post(
        f"{URL}/{product.id}/stock-adjustments",
        {"delta": 6, "reason": "delivery 42"},
        format="json",
    )
    too_many = client.post(
        f"{URL}/{product.id}/stock-adjustments",
        {"delta": -11, "reason": "breakage"},
        format="json",
    )
    no_reason = client.post(
        f"{URL}/{product.id}/stock-adjustments", {"delta": 1}, format="json"
    )

    assert added.status_code == 201
    assert added.json()["stock"] == 10
    assert_problem(too_many, 400, "validation_error")
    assert_problem(no_reason, 400, "validation_error")
    product.refresh_from_db()
    assert product.stock == 10
    assert list(
        StockAdjustment.objects.filter(product_id=product.id).values_list(
            "delta", "reason", "actor_email"
        )
    ) == [(6, "delivery 42", staff.email)]


def test_fast_representation_equals_the_documented_serializer(make_product):
    from apps.products.serializers import ProductSerializer, product_representation

    product = make_product(
        price=Decimal("7.5"),
        tags=["a"],
        images=["https://img.example.com/x.png"],
        attributes={"colour": "red", "voltage": 230, "wireless": True},
    )
    product.refresh_from_db()

    assert product_representation(product) == ProductSerializer(product).data
