"""Logs: JSON lines in production, readable lines in development, each with
the trace, span, request and user ids; and no password, token or
Authorization header in any log line, whatever the level."""

import io
import json
import logging
import re
import secrets
from decimal import Decimal

import httpx
import pytest
from django.test import Client

from apps.core.logs import LogContextFilter, ReadableFormatter, json_formatter
from apps.products.models import Product

JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


@pytest.fixture
def log_lines():
    """What the root logger writes through a handler configured as
    settings.LOGGING's console handler, with the given formatter."""
    handlers = []

    def capture(formatter) -> io.StringIO:
        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        handler.setFormatter(formatter)
        handler.addFilter(LogContextFilter())
        logging.getLogger().addHandler(handler)
        handlers.append(handler)
        return stream

    yield capture
    for handler in handlers:
        logging.getLogger().removeHandler(handler)


def test_production_logs_are_json_lines_with_the_configured_fields(settings):
    console = settings.LOGGING["handlers"]["console"]
    assert console["formatter"] == "json"
    assert console["filters"] == ["context"]


@pytest.mark.django_db
@pytest.mark.urls("tests.urls_failing")
def test_a_500_is_logged_as_json_with_the_trace_request_and_user_ids(
    customer, auth_client, log_lines
):
    stream = log_lines(json_formatter())
    token = auth_client(customer).tokens["access"]
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)

    response = Client(raise_request_exception=False).get(
        "/boom/api",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_X_REQUEST_ID="req-log-1",
        HTTP_TRACEPARENT=f"00-{trace_id}-{span_id}-01",
    )

    assert response.status_code == 500
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    (error,) = [r for r in records if r["logger"] == "apps.core.problems"]
    assert error["level"] == "ERROR"
    assert error["timestamp"].endswith("+00:00")
    # With tracing off the caller's context is passed through, so the line
    # names the caller's trace and span.
    assert (error["trace_id"], error["span_id"]) == (trace_id, span_id)
    assert error["request_id"] == "req-log-1"
    assert error["user_id"] == str(customer.id)
    assert "RuntimeError: secret internal detail" in error["exc_info"]
    # Django's own line for the 500, written once the middleware chain has
    # returned, names the same request, user and trace.
    (failed,) = [r for r in records if r["logger"] == "django.request"]
    assert failed["message"] == "Internal Server Error: /boom/api"
    assert (failed["request_id"], failed["user_id"], failed["trace_id"]) == (
        "req-log-1",
        str(customer.id),
        trace_id,
    )


@pytest.mark.django_db
@pytest.mark.urls("tests.urls_failing")
def test_an_anonymous_request_logs_no_user_and_loads_none(
    log_lines, django_assert_num_queries
):
    stream = log_lines(json_formatter())

    with django_assert_num_queries(0):
        Client(raise_request_exception=False).get(
            "/boom/django", HTTP_X_REQUEST_ID="req-log-2"
        )

    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert records
    for record in records:
        assert (record["request_id"], record["user_id"]) == ("req-log-2", None)
        assert record["trace_id"] is None


def test_development_lines_are_readable_with_the_context_at_the_end(log_lines):
    stream = log_lines(ReadableFormatter())
    logger = logging.getLogger("apps.test")

    logger.warning("Stock low for %s", "mug")

    line = stream.getvalue().strip()
    assert line.endswith("WARNING apps.test: Stock low for mug")
    assert "{" not in line


@pytest.mark.django_db(transaction=True, databases=["default", "orders", "catalog"])
def test_no_password_token_or_authorization_header_is_logged_at_debug(
    live_server, caplog, settings
):
    """Registration, login, a failed login, token refresh, an order and a
    bad token, through a real HTTP client (httpx, whose libraries log
    headers at DEBUG) and server, in debug mode (SQL logged), with every
    logger at DEBUG except those LOGGING keeps above it on purpose."""
    settings.DEBUG = True
    Product.objects.create(
        id="mug", name="Mug", price=Decimal("8.50"), stock=5, category="Kitchen"
    )
    password = f"Pw-{secrets.token_urlsafe(12)}"
    email = f"logs-{secrets.token_hex(4)}@example.com"
    pinned = set(settings.LOGGING["loggers"])
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and not any(
            name == p or name.startswith(f"{p}.") for p in pinned
        ):
            caplog.set_level(logging.DEBUG, logger=name)

    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        assert (
            client.post(
                "/api/v1/users",
                json={"email": email, "name": "Log Shopper", "password": password},
            ).status_code
            == 201
        )
        login = client.post(
            "/api/v1/users/login", json={"email": email, "password": password}
        ).json()
        wrong = client.post(
            "/api/v1/users/login", json={"email": email, "password": password + "x"}
        )
        refreshed = client.post(
            "/api/v1/users/token/refresh", json={"refresh": login["refresh"]}
        ).json()
        authorization = f"Bearer {refreshed['access']}"
        placed = client.post(
            "/api/v1/orders",
            json={"items": [{"product_id": "mug", "quantity": 1}]},
            headers={"Authorization": authorization},
        )
        stale = client.get("/api/v1/orders", headers={"Authorization": "Bearer x.y.z"})

    assert wrong.status_code == 401
    assert placed.status_code == 201, placed.text
    assert stale.status_code == 401
    # Enough was logged for the test to mean something.
    # (httpx's request lines are held at WARNING: see settings.LOGGING.)
    debug = {r.name for r in caplog.records if r.levelno == logging.DEBUG}
    assert "psycopg" in debug
    # Each record as it would be written (the message, its arguments and
    # any extra fields the JSON formatter prints).
    formatter = json_formatter()
    context = LogContextFilter()
    written = []
    for record in caplog.records:
        context.filter(record)
        written.append(formatter.format(record))
    text = caplog.text + "\n".join(written)
    for secret in (
        password,
        login["access"],
        login["refresh"],
        refreshed["access"],
        refreshed["refresh"],
        authorization,
        "x.y.z",
    ):
        assert secret not in text
    # Nor any other JWT (a token the server signed along the way).
    assert not JWT.search(text), JWT.search(text).group(0)


def test_a_record_whose_request_is_not_an_http_request_is_still_written(log_lines):
    # runserver's access log puts the socket on the record as "request".
    stream = log_lines(json_formatter())

    logging.getLogger("apps.test").info('"GET / HTTP/1.1" 200', extra={"request": 1})

    (record,) = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (record["message"], record["request_id"]) == ('"GET / HTTP/1.1" 200', None)
