"""Rate limits at the edge, counted in the real Redis (ADR 0019)."""

import logging
import subprocess
import time
import uuid

import httpx
import jwt
import pytest
import redis
from django.conf import settings as django_settings
from django.test import RequestFactory
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from rest_framework.test import APIClient

from apps.gateway import ratelimit
from apps.gateway.ratelimit import Config, client_ip, parse_trusted_proxies
from config.keys import load_or_create_keypair
from conftest import login, subprocess_database_env
from tests.polling import poll
from tests.servers import free_port

HIGH = "100000/minute"
LOGIN = "/api/v1/users/login"
REGISTER = "/api/v1/users"
PRODUCTS = "/api/v1/products"

pytestmark = pytest.mark.django_db(databases=["default", "catalog"])


@pytest.fixture
def limits(settings):
    """Rate limits of the test's own (a key prefix nobody else uses) on the
    test Redis; call with the RATELIMIT_* settings to change."""
    settings.RATELIMIT_KEY_PREFIX = f"test-{uuid.uuid4().hex}"
    settings.RATELIMIT_STORAGE_URL = django_settings.RATELIMIT_STORAGE_URL
    assert settings.RATELIMIT_STORAGE_URL.startswith("redis://")

    def set_limits(**values):
        for name, value in values.items():
            setattr(settings, f"RATELIMIT_{name.upper()}", value)

    return set_limits


def client(ip="203.0.113.7", **headers) -> APIClient:
    return APIClient(REMOTE_ADDR=ip, **headers)


def rate_headers(response) -> tuple[int, int, int]:
    return (
        int(response["RateLimit-Limit"]),
        int(response["RateLimit-Remaining"]),
        int(response["RateLimit-Reset"]),
    )


def assert_rate_limited(response, limit: int):
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "rate_limited"
    assert body["status"] == 429
    assert body["instance"] == response.wsgi_request.path
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 60
    assert rate_headers(response) == (limit, 0, retry_after)


def login_attempt(api: APIClient, email: str, password: str = "wrong-password-1"):
    return api.post(LOGIN, {"email": email, "password": password}, format="json")


# -- Budgets and headers ------------------------------------------------------


def test_anonymous_caller_gets_429_with_problem_and_headers_after_the_limit(limits):
    limits(anonymous="3/minute")
    api = client()

    responses = [api.get(PRODUCTS) for _ in range(4)]

    assert [r.status_code for r in responses[:3]] == [200, 200, 200]
    assert [rate_headers(r)[:2] for r in responses[:3]] == [(3, 2), (3, 1), (3, 0)]
    assert all(1 <= rate_headers(r)[2] <= 60 for r in responses[:3])
    assert_rate_limited(responses[3], 3)
    # Another address has its own budget.
    assert client("198.51.100.1").get(PRODUCTS).status_code == 200


def test_headers_agree_with_the_limits_library_reading_the_same_window(limits):
    """The counters are limits' fixed windows: its own strategy, reading
    Redis, sees what the headers said."""
    limits(anonymous="5/minute")
    client("192.0.2.10").get(PRODUCTS)
    response = client("192.0.2.10").get(PRODUCTS)

    storage = storage_from_string(
        django_settings.RATELIMIT_STORAGE_URL,
        key_prefix=django_settings.RATELIMIT_KEY_PREFIX,
    )
    stats = FixedWindowRateLimiter(storage).get_window_stats(
        parse("5/minute"), "ip", "192.0.2.10"
    )
    assert stats.remaining == int(response["RateLimit-Remaining"]) == 3
    assert abs((stats.reset_time - time.time()) - rate_headers(response)[2]) <= 1


def test_non_api_paths_are_not_limited(limits):
    limits(anonymous="1/minute")
    api = client()

    assert [api.get("/health/live").status_code for _ in range(3)] == [200] * 3
    assert "RateLimit-Limit" not in api.get("/health/live")


def test_switched_off_nothing_is_limited(limits):
    limits(anonymous="1/minute", enabled=False)
    api = client()

    responses = [api.get(PRODUCTS) for _ in range(3)]

    assert [r.status_code for r in responses] == [200] * 3
    assert "RateLimit-Limit" not in responses[0]


# -- Per user, per IP -----------------------------------------------------------


def test_two_users_behind_one_address_have_budgets_of_their_own(limits, make_user):
    limits(anonymous=HIGH, authenticated="3/minute")
    ada, grace = make_user(), make_user()
    ada_api = client("198.51.100.20")
    ada_api.credentials(HTTP_AUTHORIZATION=f"Bearer {login(client(), ada)['access']}")
    grace_api = client("198.51.100.20")
    grace_token = login(client(), grace)["access"]
    grace_api.credentials(HTTP_AUTHORIZATION=f"Bearer {grace_token}")

    ada_statuses = [
        ada_api.get(f"/api/v1/users/{ada.id}").status_code for _ in range(4)
    ]
    grace_response = grace_api.get(f"/api/v1/users/{grace.id}")
    anonymous = client("198.51.100.20").get(PRODUCTS)

    assert ada_statuses == [200, 200, 200, 429]
    assert grace_response.status_code == 200
    assert rate_headers(grace_response)[:2] == (3, 2)
    # The address itself is spent by neither: anonymous callers count apart.
    assert anonymous.status_code == 200
    assert int(anonymous["RateLimit-Limit"]) == 100000


def test_forged_or_invalid_tokens_share_their_address_budget(limits, tmp_path):
    """A token that does not verify is anonymous: inventing tokens (or
    their subjects) buys no budget of its own."""
    limits(anonymous="3/minute", authenticated=HIGH)
    unknown_key, _ = load_or_create_keypair(tmp_path)

    def forged():
        claims = {
            "sub": str(uuid.uuid4()),
            "token_type": "access",
            "iss": django_settings.JWT_ISSUER,
            "exp": int(time.time()) + 600,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, unknown_key, algorithm="RS256")

    tokens = ["garbage", forged(), forged(), forged()]

    responses = [
        client("192.0.2.30", HTTP_AUTHORIZATION=f"Bearer {t}").get(PRODUCTS)
        for t in tokens
    ]

    # The catalog serves them as anonymous (a public read), and each
    # spent the address's budget, not one of its own.
    assert [r.status_code for r in responses[:3]] == [200, 200, 200]
    assert [rate_headers(r)[:2] for r in responses[:3]] == [(3, 2), (3, 1), (3, 0)]
    assert_rate_limited(responses[3], 3)


def test_login_per_email_limit_holds_across_addresses(limits, make_user):
    limits(anonymous=HIGH, login_ip=HIGH, login_email="2/minute")
    victim = make_user(email="victim@example.com")

    first = login_attempt(client("192.0.2.51"), "victim@example.com")
    second = login_attempt(client("192.0.2.52"), "victim@example.com")
    # The users context stores emails stripped and in lower case: so does
    # the limit, or case would buy new budgets.
    third = login_attempt(client("192.0.2.53"), "  Victim@Example.COM ")
    right_password = login_attempt(
        client("192.0.2.54"), victim.email, victim.raw_password
    )
    other = login_attempt(client("192.0.2.55"), "someone-else@example.com")

    assert [first.status_code, second.status_code] == [401, 401]
    assert first.json()["code"] == "invalid_credentials"
    assert_rate_limited(third, 2)
    assert_rate_limited(right_password, 2)
    assert other.status_code == 401


def test_login_per_address_limit_holds_across_emails(limits):
    limits(anonymous=HIGH, login_ip="3/minute", login_email=HIGH)
    api = client("192.0.2.60")

    responses = [login_attempt(api, f"guess{n}@example.com") for n in range(4)]

    assert [r.status_code for r in responses[:3]] == [401, 401, 401]
    assert [rate_headers(r)[:2] for r in responses[:3]] == [(3, 2), (3, 1), (3, 0)]
    assert_rate_limited(responses[3], 3)
    # The address's other API calls have their own (anonymous) budget.
    assert api.get(PRODUCTS).status_code == 200


def test_login_still_reads_its_body_after_the_limiter_has(limits, make_user):
    limits(login_ip="5/minute", login_email="5/minute")
    user = make_user()

    response = login_attempt(client(), user.email, user.raw_password)

    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"
    assert rate_headers(response)[:2] == (5, 4)


def test_a_login_without_an_email_is_limited_per_address(limits):
    limits(anonymous=HIGH, login_ip="2/minute", login_email="1/minute")
    api = client("192.0.2.65")

    responses = [
        api.post(LOGIN, b"{not json", content_type="application/json"),
        api.post(LOGIN, {"password": "x"}, format="json"),
        api.post(LOGIN, {"email": ["a@example.com"], "password": "x"}, format="json"),
    ]

    assert [r.status_code for r in responses[:2]] == [400, 400]
    assert_rate_limited(responses[2], 2)


def test_an_email_that_is_no_valid_utf8_is_limited_per_email_not_a_500(limits):
    """A lone surrogate ("\\udfff") is valid JSON and no valid UTF-8."""
    limits(anonymous=HIGH, login_ip=HIGH, login_email="1/minute")
    body = b'{"email": "ab\\udfff@example.com", "password": "x"}'

    responses = [
        client(f"192.0.2.6{n}").post(LOGIN, body, content_type="application/json")
        for n in range(2)
    ]

    assert responses[0].status_code < 500
    assert_rate_limited(responses[1], 1)


def test_registration_is_limited_per_address_and_per_email(limits):
    limits(anonymous=HIGH, register_ip="2/minute", register_email="1/minute")

    def register(ip, email):
        return client(ip).post(
            REGISTER,
            {"email": email, "name": "Ada", "password": "analytical-engine-1843"},
            format="json",
        )

    created = register("192.0.2.70", "new1@example.com")
    same_email = register("192.0.2.71", "NEW1@example.com")
    second = register("192.0.2.70", "new2@example.com")
    third = register("192.0.2.70", "new3@example.com")

    assert created.status_code == 201
    assert_rate_limited(same_email, 1)
    assert second.status_code == 201
    assert_rate_limited(third, 2)


# -- The client's address ----------------------------------------------------------


def test_x_forwarded_for_is_ignored_unless_a_proxy_is_trusted(limits):
    limits(anonymous="2/minute")

    responses = [
        client("192.0.2.80", HTTP_X_FORWARDED_FOR=f"10.9.9.{n}").get(PRODUCTS)
        for n in range(3)
    ]

    assert [r.status_code for r in responses] == [200, 200, 429]


def test_x_forwarded_for_names_the_client_behind_a_trusted_proxy(limits):
    limits(anonymous="1/minute", trusted_proxies=["10.0.0.0/8"])

    via_proxy = [
        client("10.1.2.3", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").get(PRODUCTS)
        for n in range(3)
    ]
    # Not from a trusted proxy: the header is the client's own invention.
    direct = [
        client("192.0.2.90", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").get(PRODUCTS)
        for n in range(2)
    ]

    assert [r.status_code for r in via_proxy] == [200, 200, 200]
    assert [r.status_code for r in direct] == [200, 429]


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ([], "192.0.2.1", "198.51.100.1", "192.0.2.1"),
        (["1"], "10.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1"),
        (["2"], "10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.1", "198.51.100.1"),
        (["2"], "10.0.0.2", "198.51.100.1", "10.0.0.2"),
        (["10.0.0.0/8"], "10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.1", "198.51.100.1"),
        (["10.0.0.0/8"], "192.0.2.1", "198.51.100.1", "192.0.2.1"),
        (["10.0.0.0/8"], "10.0.0.2", "not-an-ip, 10.0.0.1", "10.0.0.1"),
        ([], "2001:db8:1:2:3:4:5:6", "", "2001:db8:1:2::/64"),
    ],
)
def test_client_address(trusted, remote, forwarded, expected):
    count, networks = parse_trusted_proxies(trusted)
    config = Config(True, (), (), (), (), (), (), count, networks)
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = RequestFactory().get("/api/v1/products", REMOTE_ADDR=remote, **headers)

    assert client_ip(request, config) == expected


# -- Redis down ------------------------------------------------------------------


def test_redis_down_falls_back_to_limits_per_process_without_hanging(limits, caplog):
    limits(anonymous="3/minute", storage_url="redis://127.0.0.1:1/0")
    api = client("192.0.2.100")

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="apps.gateway.ratelimit"):
        responses = [api.get(PRODUCTS) for _ in range(10)]
    elapsed = time.monotonic() - started

    assert [r.status_code for r in responses[:3]] == [200, 200, 200]
    assert all(r.status_code == 429 for r in responses[3:])
    assert_rate_limited(responses[3], 3)
    assert elapsed < 5, f"10 requests took {elapsed:.1f} s with Redis down"
    warnings = [r for r in caplog.records if "does not answer" in r.getMessage()]
    assert len(warnings) == 1


class RedisServer:
    """A redis-server of the test's own, to stop and start again."""

    def __init__(self):
        self.port = free_port()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        connection = redis.Redis(port=self.port, socket_connect_timeout=0.2)

        def up():
            try:
                return connection.ping()
            except redis.RedisError:
                return False

        poll(up, timeout=10, message="redis-server")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def redis_server():
    server = RedisServer()
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


def test_limits_go_back_to_redis_when_it_returns(limits, redis_server):
    limits(
        anonymous="100/minute",
        storage_url=f"redis://127.0.0.1:{redis_server.port}/0",
        redis_retry_seconds=0.2,
    )
    api = client("192.0.2.110")
    shared = [api.get(PRODUCTS) for _ in range(2)]

    redis_server.stop()
    in_memory = api.get(PRODUCTS)
    redis_server.start()  # empty: counts start again

    def shared_again():
        response = api.get(PRODUCTS)
        return not ratelimit.current().limiter.degraded and response

    back = poll(shared_again, timeout=10, interval=0.1, message="Redis again")

    assert [rate_headers(r)[1] for r in shared] == [99, 98]
    assert rate_headers(in_memory)[1] == 99  # this process's own count
    assert ratelimit.current().limiter.degraded is False
    keys = redis.Redis(port=redis_server.port).keys("*")
    assert len(keys) == 1 and b"192.0.2.110" in keys[0]
    assert back.status_code == 200


# -- Shared by processes -----------------------------------------------------------


def test_the_limit_holds_across_two_server_processes_sharing_redis():
    """Two real servers, one Redis: the per-email login budget is one."""
    from tests.servers import ServerProcess

    env = {
        **subprocess_database_env(),
        "CACHE_URL": django_settings.CACHES["default"]["LOCATION"],
        "RATELIMIT_STORAGE_URL": django_settings.RATELIMIT_STORAGE_URL,
        "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        "RATELIMIT_LOGIN_EMAIL": "4/minute",
    }
    servers = [ServerProcess(env, name=f"gateway-{n}") for n in (1, 2)]
    body = {"email": "shared@example.com", "password": "x" * 12}
    try:
        for server in servers:
            server.start()
        statuses = [
            (server.port, httpx.post(server.url + LOGIN, json=body).status_code)
            for _ in range(5)
            for server in servers
        ]
    finally:
        logs = [server.stop() for server in servers]
        for server in servers:
            server.close()

    ports = {server.port for server in servers}
    allowed = [(port, status) for port, status in statuses if status != 429]
    assert [status for _, status in allowed] == [401] * 4, logs
    assert {port for port, _ in allowed} == ports
    assert [status for _, status in statuses[4:]] == [429] * 6
