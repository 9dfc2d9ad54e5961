import logging

import pytest
from django.test import Client, override_settings


@pytest.mark.django_db
def test_unknown_path_is_problem_json_404(api_client):
    response = api_client.get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "not_found"
    assert body["status"] == 404
    assert body["type"] == "urn:shop:problem:not_found"


@pytest.mark.django_db
def test_wrong_method_on_api_view_is_problem_json_405(api_client):
    response = api_client.delete("/api/v1/users/login")

    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"


def test_wrong_method_on_plain_django_view_is_problem_json_405(api_client):
    response = api_client.post("/health/live")

    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "method_not_allowed"
    assert response["Allow"] == "GET"


@pytest.mark.urls("tests.urls_failing")
@pytest.mark.parametrize("path", ["/boom/api", "/boom/django"])
def test_500_is_problem_json_without_traceback_and_is_logged(path, caplog):
    client = Client(raise_request_exception=False)

    with caplog.at_level(logging.ERROR):
        response = client.get(path, HTTP_X_REQUEST_ID="req-123")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response["X-Request-ID"] == "req-123"
    body = response.json()
    assert body["code"] == "internal_error"
    assert "secret" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert any("secret internal detail" in str(r.exc_info) for r in caplog.records)


def test_every_response_carries_a_request_id(api_client):
    response = api_client.get("/health/live")

    assert len(response["X-Request-ID"]) == 32


def test_problem_json_is_negotiable(api_client):
    response = api_client.get("/api/v1/users", HTTP_ACCEPT="application/problem+json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"


@override_settings(DEBUG=True)
def test_404_code_is_the_same_with_debug_on(api_client):
    response = api_client.get("/no/such/page")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.django_db
def test_an_oversized_json_body_is_413_and_nothing_is_written(api_client):
    from apps.users.models import User

    body = '{"email": "a@example.com", "name": "' + "x" * 3_000_000 + '"}'

    response = api_client.generic(
        "POST", "/api/v1/users", body, content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/users/login"])
def test_a_json_body_nested_too_deeply_is_400_malformed(api_client, path):
    from apps.users.models import User

    body = "[" * 100_000 + "]" * 100_000

    response = api_client.generic("POST", path, body, content_type="application/json")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "malformed_request"
    assert not User.objects.exists()
