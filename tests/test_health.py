import pytest
from django.test import override_settings


def test_live_answers_ok(api_client):
    response = api_client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(databases="__all__")
def test_ready_checks_every_database_cache_and_broker(api_client):
    response = api_client.get("/health/ready")

    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert checks == {
        "database:default": "ok",
        "database:orders": "ok",
        "database:catalog": "ok",
        "cache": "ok",
        "broker": "ok",
    }


@pytest.mark.django_db(databases="__all__")
def test_ready_is_503_naming_the_broker_when_it_is_down(api_client):
    # Nothing listens on port 1 of the loopback address.
    with override_settings(CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:1//"):
        response = api_client.get("/health/ready")

    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["broker"]
    assert body["checks"]["database:default"] == "ok"
