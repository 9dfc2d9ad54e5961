"""The catalog in its own deployment: two catalog instances and one
instance with users, orders and the gateway, each a real server process on
127.0.0.1, plus a real Celery worker running the saga against the remote
catalog.

What the issue asks to see: an order placed through the gateway completes;
a catalog instance killed mid-run costs no idempotent request; with every
instance down the breaker opens and callers get a fast 503 with
Retry-After, and it closes again when an instance returns; weighted
balancing splits traffic by weight.
"""

import json
import os
import threading
from decimal import Decimal

import httpx
import pytest

from apps.products.models import Product
from conftest import WorkerProcess, subprocess_database_env
from tests.polling import poll
from tests.servers import RelayProcess, ServerProcess

pytestmark = pytest.mark.django_db(
    transaction=True, databases=["default", "orders", "catalog"]
)

TOKEN = "split-test-internal-token"  # noqa: S105 - a test value
COOL_DOWN_SECONDS = 3


@pytest.fixture
def deployment():
    """Start catalog instances and gateways; stop them all at the end."""
    started: list[ServerProcess] = []
    env = {
        **subprocess_database_env(),
        "INTERNAL_API_TOKEN": TOKEN,
        "CIRCUIT_BREAKER_RESET_SECONDS": str(COOL_DOWN_SECONDS),
        "BALANCER_HEALTH_INTERVAL_SECONDS": "0.5",
        # Each test its own exchange and task queue on the shared broker.
        "EVENTS_EXCHANGE": f"split-{os.urandom(4).hex()}",
        "SAGA_TASK_QUEUE": f"split-saga-{os.urandom(4).hex()}",
    }

    closers = []

    class Deployment:
        def __init__(self):
            self.env = env

        def on_close(self, closer) -> None:
            closers.append(closer)

        def catalog(self, name: str, port: int | None = None) -> ServerProcess:
            server = ServerProcess(
                {**env, "GRANIAN_LOG_ACCESS_ENABLED": "true"}, name=name, port=port
            )
            started.append(server.start())
            return server

        def gateway(self, instances, balancer="round_robin") -> ServerProcess:
            contexts = {
                "products": {
                    "mode": "remote",
                    "instances": instances,
                    "balancer": balancer,
                }
            }
            server = ServerProcess(
                {**env, "CONTEXTS_JSON": json.dumps(contexts)}, name="gateway"
            )
            started.append(server.start())
            return server

    yield Deployment()
    for closer in closers:
        closer()
    for server in started:
        server.close()


def _product(pid="tea", stock=10) -> Product:
    return Product.objects.create(
        id=pid, name="Green tea", price=Decimal("4.50"), stock=stock, category="Tea"
    )


def _bearer(gateway: ServerProcess, user) -> dict[str, str]:
    answer = httpx.post(
        f"{gateway.url}/api/v1/users/login",
        json={"email": user.email, "password": user.raw_password},
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access']}"}


def test_an_order_placed_through_the_gateway_completes(deployment, customer, staff):
    _product(stock=10)
    a, b = deployment.catalog("catalog-a"), deployment.catalog("catalog-b")
    gateway = deployment.gateway([a.url, b.url])
    remote_catalog = {"products": {"mode": "remote", "instances": [a.url, b.url]}}
    # The saga's worker, with the catalog remote as well.
    worker = WorkerProcess(
        deployment.env["SAGA_TASK_QUEUE"],
        {
            **deployment.env,
            "EVENT_CONSUMERS_ENABLED": "order_saga",
            "CONTEXTS_JSON": json.dumps(remote_catalog),
        },
    )
    deployment.on_close(worker.stop)
    worker.wait_ready()
    relay = RelayProcess(deployment.env)
    deployment.on_close(relay.stop)
    customer_auth = _bearer(gateway, customer)

    placed = httpx.post(
        f"{gateway.url}/api/v1/orders",
        json={"items": [{"product_id": "tea", "quantity": 3}]},
        headers=customer_auth,
    )
    assert placed.status_code == 201, placed.text
    order_url = f"{gateway.url}/api/v1/orders/{placed.json()['id']}"

    def confirmed():
        body = httpx.get(order_url, headers=customer_auth).json()
        return body if body["status"] in ("confirmed", "cancelled") else None

    assert poll(confirmed, timeout=60, message="the saga")["status"] == "confirmed"
    staff_auth = _bearer(gateway, staff)
    for action in ("ship", "complete"):
        answer = httpx.post(f"{order_url}/{action}", headers=staff_auth)
        assert answer.status_code == 200, answer.text
    assert httpx.get(order_url, headers=customer_auth).json()["status"] == "completed"
    # The catalog, read through the gateway's proxy, sold the three.
    product = httpx.get(f"{gateway.url}/api/v1/products/tea").json()
    assert product["stock"] == 7


def test_a_catalog_instance_killed_mid_run_costs_no_idempotent_request(deployment):
    _product()
    a, b = deployment.catalog("catalog-a"), deployment.catalog("catalog-b")
    gateway = deployment.gateway([a.url, b.url])
    statuses: list[int] = []
    halfway = threading.Event()

    def read_the_catalog():
        with httpx.Client(base_url=gateway.url) as client:
            for n in range(200):
                if n == 60:
                    halfway.set()
                statuses.append(client.get("/api/v1/products/tea").status_code)

    reader = threading.Thread(target=read_the_catalog)
    reader.start()
    halfway.wait(timeout=60)
    a.kill()
    reader.join(timeout=120)

    assert statuses == [200] * 200
    # The survivor served what came after.
    assert b.output().count("/api/v1/products/tea") > 100


def test_with_every_instance_down_the_breaker_opens_then_closes(deployment, staff):
    _product()
    a = deployment.catalog("catalog-a")
    gateway = deployment.gateway([a.url])
    staff_auth = _bearer(gateway, staff)
    assert httpx.get(f"{gateway.url}/api/v1/products/tea").status_code == 200
    port = a.port
    a.kill()

    answers = [httpx.get(f"{gateway.url}/api/v1/products/tea") for _ in range(8)]

    assert {answer.status_code for answer in answers} == {503}
    last = answers[-1]
    assert last.headers["Content-Type"] == "application/problem+json"
    assert last.json()["code"] == "context_unavailable"
    assert "circuit open" in last.json()["detail"]
    assert 1 <= int(last.headers["Retry-After"]) <= COOL_DOWN_SECONDS
    status = httpx.get(f"{gateway.url}/api/v1/gateway/status", headers=staff_auth)
    assert status.json()["circuits"]["products"] == "open"

    deployment.catalog("catalog-a-again", port=port)

    def served():
        return httpx.get(f"{gateway.url}/api/v1/products/tea").status_code == 200

    poll(served, timeout=COOL_DOWN_SECONDS + 20, interval=0.2, message="recovery")
    for _ in range(3):  # the half-open trials
        assert served()
    status = httpx.get(f"{gateway.url}/api/v1/gateway/status", headers=staff_auth)
    assert status.json()["circuits"]["products"] == "closed"


def test_weighted_balancing_splits_traffic_by_weight(deployment):
    _product()
    a, b = deployment.catalog("catalog-a"), deployment.catalog("catalog-b")
    gateway = deployment.gateway(
        [{"url": a.url, "weight": 1}, {"url": b.url, "weight": 3}],
        balancer="weighted",
    )

    with httpx.Client(base_url=gateway.url) as client:
        for _ in range(200):
            assert client.get("/api/v1/products/tea").status_code == 200

    served_by_a = a.output().count("/api/v1/products/tea")
    served_by_b = b.output().count("/api/v1/products/tea")
    assert served_by_a + served_by_b == 200
    assert 35 <= served_by_a <= 65  # 50 expected


def test_the_gateway_process_refuses_bad_tokens(deployment, customer):
    import hashlib
    import hmac
    import time

    import jwt
    from django.conf import settings

    from apps.gateway.tests.test_auth import _b64, _claims, _rsa_private_pem

    a = deployment.catalog("catalog-a")
    gateway = deployment.gateway([a.url])
    valid = _bearer(gateway, customer)["Authorization"].removeprefix("Bearer ")
    kid = jwt.get_unverified_header(valid)["kid"]
    now = int(time.time())
    public_pem = settings.SIMPLE_JWT["VERIFYING_KEY"].encode()
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(_claims(customer)).encode())
    mac = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    cases = {
        "Token is signed with an unknown key": jwt.encode(
            _claims(customer), _rsa_private_pem(), algorithm="RS256",
            headers={"kid": "not-published"},
        ),
        "Token has expired": jwt.encode(
            _claims(customer, iat=now - 900, exp=now - 60),
            settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="RS256",
            headers={"kid": kid},
        ),
        "Token is not signed with RS256": f"{head}.{body}.{_b64(mac)}",
    }  # fmt: skip

    with httpx.Client(base_url=gateway.url) as client:
        accepted = client.get(
            "/api/v1/orders", headers={"Authorization": f"Bearer {valid}"}
        )
        refused = {
            detail: client.get(
                "/api/v1/orders", headers={"Authorization": f"Bearer {t}"}
            )
            for detail, t in cases.items()
        }

    assert accepted.status_code == 200
    for detail, answer in refused.items():
        assert answer.status_code == 401
        assert answer.json()["code"] == "token_not_valid"
        assert answer.json()["detail"] == detail
