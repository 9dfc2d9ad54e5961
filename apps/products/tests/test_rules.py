"""The product rules live in the model and the services run them, so the
admin, the commands and the API meet the same rules (issue 9)."""

import pytest

from apps.core.errors import InvalidInput
from apps.products import services
from apps.products.models import MAX_STOCK, Product
from tests.problems import assert_problem

pytestmark = pytest.mark.django_db(databases=["default", "catalog"])

KETTLE = {"id": "kettle", "name": "Kettle", "price": "12.00", "category": "Kitchen"}


def _admin_form(**fields) -> dict:
    return {
        "id": "kettle",
        "name": "Kettle",
        "description": "",
        "price": "12.00",
        "category": "Kitchen",
        "tags": "",
        "images": "",
        "attributes": "{}",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"images": "javascript:alert(document.cookie)"}, "images"),
        ({"images": "JavaScript://example.com/%0Aalert(1)"}, "images"),
        ({"images": "ftp://img.example.com/a.png"}, "images"),
        ({"attributes": '{"size": {"width": 3}}'}, "attributes"),
        ({"attributes": '{"sizes": [1, 2]}'}, "attributes"),
        ({"attributes": '{"bad key": 1}'}, "attributes"),
        ({"attributes": '["not", "an", "object"]'}, "attributes"),
        ({"tags": ", ".join(f"t{n}" for n in range(21))}, "tags"),
        ({"tags": "t" * 51}, "tags"),
        ({"id": "search"}, "id"),
    ],
)
def test_the_admin_refuses_what_the_api_refuses(admin_client, fields, field):
    added = admin_client.post("/admin/products/product/add/", _admin_form(**fields))

    assert added.status_code == 200  # the form again, with the error
    assert field in added.context["adminform"].form.errors
    assert not Product.objects.exists()


def test_the_admin_refuses_a_javascript_image_on_an_existing_product(admin_client):
    services.product_create(**KETTLE, images=["https://img.example.com/k.png"])

    response = admin_client.post(
        "/admin/products/product/kettle/change/",
        _admin_form(images="javascript:alert(1)"),
    )

    assert response.status_code == 200
    assert "images" in response.context["adminform"].form.errors
    kettle = Product.objects.get(pk="kettle")
    assert (kettle.images, kettle.version) == (["https://img.example.com/k.png"], 1)


def test_the_admin_edits_tags_and_images_as_text_with_help(admin_client):
    services.product_create(
        **KETTLE,
        tags=["home", "steel"],
        images=["https://img.example.com/a.png", "https://img.example.com/b.png"],
    )

    page = admin_client.get("/admin/products/product/kettle/change/")
    html = page.content.decode()
    assert 'value="home, steel"' in html
    assert "https://img.example.com/a.png\nhttps://img.example.com/b.png" in html
    assert "Separated by commas" in html
    assert "One URL a line" in html
    assert "A JSON object" in html

    saved = admin_client.post(
        "/admin/products/product/kettle/change/",
        _admin_form(
            tags="Home,  Copper ,",
            images="https://img.example.com/c.png\r\n\r\n",
            attributes='{"colour": "red", "watts": 1200}',
        ),
    )

    assert saved.status_code == 302
    kettle = Product.objects.get(pk="kettle")
    assert kettle.tags == ["copper", "home"]
    assert kettle.images == ["https://img.example.com/c.png"]
    assert kettle.attributes == {"colour": "red", "watts": 1200}


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"tags": ["ok", 5]}, "tags", "not_a_string"),
        ({"tags": [None]}, "tags", "not_a_string"),
        ({"tags": "home"}, "tags", "not_a_list"),
        ({"tags": ["   "]}, "tags", "blank"),
        ({"images": ["javascript:alert(1)"]}, "images", "invalid_url"),
        ({"images": [{"url": "https://x.example"}]}, "images", "not_a_string"),
        ({"attributes": {"size": {"w": 1}}}, "attributes", "not_a_scalar"),
        ({"attributes": {"n": "x" * 201}}, "attributes", "max_length"),
        ({"attributes": {f"a{n}": n for n in range(51)}}, "attributes", "max_length"),
        ({"stock": MAX_STOCK + 1}, "stock", "max_value"),
        ({"id": "has space"}, "id", "invalid"),
        ({"id": "search"}, "id", "reserved"),
    ],
)
def test_services_refuse_what_breaks_a_product_rule(fields, field, code):
    """What the admin, the commands and the API all call."""
    with pytest.raises(InvalidInput) as raised:
        services.product_create(**{**KETTLE, **fields})

    assert [e.code for e in raised.value.errors[field]] == [code]
    assert not Product.objects.exists()


def test_an_update_meets_the_same_rules(make_product):
    make_product(id="kettle")

    with pytest.raises(InvalidInput) as raised:
        services.product_update(
            product_id="kettle",
            expected_revisions=None,
            changes={"tags": [1, 2], "images": ["javascript:alert(1)"]},
        )

    assert set(raised.value.errors) == {"tags", "images"}
    assert Product.objects.get(pk="kettle").version == 1


def test_the_api_answers_the_model_rules_with_their_codes(staff, auth_client):
    response = auth_client(staff).post(
        "/api/v1/products",
        {
            **KETTLE,
            "stock": MAX_STOCK + 1,
            "images": ["javascript:alert(1)"],
            "attributes": {"size": {"w": 1}},
        },
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert {(e["field"], e["code"]) for e in body["errors"]} == {
        ("stock", "max_value"),
        ("images", "invalid_url"),
        ("attributes", "not_a_scalar"),
    }
    assert not Product.objects.exists()


def test_a_stock_adjustment_beyond_the_bounds_is_a_400(staff, auth_client):
    services.product_create(**KETTLE, stock=5)

    response = auth_client(staff).post(
        "/api/v1/products/kettle/stock-adjustments",
        {"delta": 10**30, "reason": "typo"},
        format="json",
    )

    assert_problem(response, 400, "validation_error")
    assert response.json()["errors"][0]["field"] == "delta"
    assert Product.objects.get(pk="kettle").stock == 5


def test_the_admin_shows_attributes_as_written(admin_client):
    services.product_create(**KETTLE, attributes={"colour": "crème", "watts": 1200})

    page = admin_client.get("/admin/products/product/kettle/change/")

    html = page.content.decode()
    assert "&quot;colour&quot;: &quot;crème&quot;" in html
    assert "\\u00e8" not in html


def test_the_product_page_sends_stock_changes_to_a_stock_adjustment(admin_client):
    services.product_create(**KETTLE, stock=5)

    page = admin_client.get("/admin/products/product/kettle/change/")

    html = page.content.decode()
    assert "5 in stock" in html
    assert "/admin/products/stockadjustment/add/?product=kettle" in html
    assert 'name="stock"' not in html  # read only
    history = admin_client.get(
        "/admin/products/stockadjustment/", {"product__exact": "kettle"}
    )
    assert history.status_code == 200
    assert "initial stock" in history.content.decode()


def test_the_stock_adjustment_finds_the_product_and_shows_its_stock(admin_client):
    services.product_create(**KETTLE, stock=5)
    services.product_create(**{**KETTLE, "id": "mug", "name": "Mug"}, stock=0)

    form = admin_client.get("/admin/products/stockadjustment/add/?product=kettle")
    found = admin_client.get(
        "/admin/products/product/autocomplete-with-stock/",
        {
            "term": "kett",
            "app_label": "products",
            "model_name": "stockadjustment",
            "field_name": "product",
        },
    )

    html = form.content.decode()
    assert "Kettle (kettle): 5 in stock" in html  # the selected product
    assert "admin-autocomplete" in html
    assert found.json()["results"] == [
        {"id": "kettle", "text": "Kettle (kettle): 5 in stock"}
    ]
