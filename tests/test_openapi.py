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
