import pytest


@pytest.mark.django_db
def test_schema_documents_every_users_endpoint_with_problem_responses(api_client):
    response = api_client.get("/api/schema/?format=json")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path in (
        "/api/v1/users",
        "/api/v1/users/{user_id}",
        "/api/v1/users/login",
        "/api/v1/users/token/refresh",
        "/api/v1/users/logout",
        "/.well-known/jwks.json",
        "/health/live",
        "/health/ready",
        "/api/v1/products",
        "/api/v1/products/search",
        "/api/v1/products/{product_id}",
    ):
        assert path in paths, path
    login = paths["/api/v1/users/login"]["post"]
    assert {"200", "400", "401"} <= set(login["responses"])
    assert "Problem" in schema["components"]["schemas"]


@pytest.mark.django_db
def test_docs_ui_is_served(api_client):
    response = api_client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()


def test_schema_is_valid_openapi_without_generator_warnings(tmp_path):
    from django.core.management import call_command

    # --fail-on-warn: every view documents its request and responses.
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(tmp_path / "schema.yml"),
    )

    assert "/api/v1/products/search" in (tmp_path / "schema.yml").read_text()


def test_the_api_docs_load_nothing_from_a_cdn(client):
    """/api/docs/ works offline: Swagger UI's assets are the project's own
    static files (drf-spectacular-sidecar), and they exist."""
    import re

    from django.contrib.staticfiles import finders

    page = client.get("/api/docs/").content.decode()

    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', page)
    assert assets, page[:500]
    assert all(a.startswith("/static/drf_spectacular_sidecar/") for a in assets)
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "cdn" not in page.lower()


def test_a_newcomer_lands_on_the_api_docs_and_the_admin(client):
    assert client.get("/")["Location"] == "/api/docs/"
    assert client.get("/admin")["Location"] == "/admin/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "serializer", "extra"),
    [
        ("/api/v1/products", "apps.products.serializers.ProductQuerySerializer", 1),
        (
            "/api/v1/products/search",
            "apps.products.serializers.SearchQuerySerializer",
            1,
        ),
        ("/api/v1/orders", "apps.orders.serializers.OrderQuerySerializer", 0),
        ("/api/v1/users", "apps.core.serializers.PageQuerySerializer", 0),
        ("/api/v1/analytics/sales", "apps.analytics.views.SalesQuerySerializer", 0),
    ],
)
def test_query_parameters_are_documented_from_the_serializer_that_parses_them(
    api_client, path, serializer, extra
):
    """One list of query parameters: the one the view parses with (and
    rejects unknown names against), not a hand-written copy."""
    from django.utils.module_loading import import_string

    schema = api_client.get("/api/schema/?format=json").json()
    documented = {
        p["name"]
        for p in schema["paths"][path]["get"]["parameters"]
        if p["in"] == "query"
    }

    fields = set(import_string(serializer)().fields)
    assert fields <= documented
    assert len(documented - fields) == extra  # products: the attr.<name> family
