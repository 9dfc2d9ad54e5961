"""Authentication at the edge: no database read, pinned RS256, published
keys only, shared revocation (ADR 0017)."""

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from contextlib import ExitStack

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.db import connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIRequestFactory

from apps.gateway import revocation
from apps.gateway.auth import GatewayAuthentication, RemoteKeys
from apps.gateway.interface import Principal
from tests.servers import free_port

pytestmark = pytest.mark.django_db(databases=["default", "catalog", "orders"])

PRODUCTS = "/api/v1/products"
LOGIN = "/api/v1/users/login"
REFRESH = "/api/v1/users/token/refresh"
LOGOUT_ALL = "/api/v1/users/logout-all"


def _me(user) -> str:
    return f"/api/v1/users/{user.id}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _rsa_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _claims(user, **overrides) -> dict:
    now = int(time.time())
    claims = {
        "token_type": "access",
        "sub": str(user.id),
        "email": user.email,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
        "iss": settings.JWT_ISSUER,
    }
    claims.update(overrides)
    return claims


def _published_kid(api_client) -> str:
    (key,) = api_client.get("/.well-known/jwks.json").json()["keys"]
    return key["kid"]


def _bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def _refused(response, detail: str) -> None:
    assert response.status_code == 401, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "token_not_valid"
    assert body["detail"] == detail
    assert response["WWW-Authenticate"].startswith("Bearer")


class _AllQueries:
    """The queries run on every database alias."""

    def __enter__(self):
        self._stack = ExitStack()
        self.contexts = [
            self._stack.enter_context(CaptureQueriesContext(connections[alias]))
            for alias in settings.DATABASES
        ]
        return self

    def __exit__(self, *exc):
        self._stack.__exit__(*exc)

    @property
    def sql(self) -> list[str]:
        return [q["sql"] for c in self.contexts for q in c.captured_queries]


@pytest.fixture(autouse=True)
def _fresh_gateway_state():
    revocation.clear_local()
    yield
    revocation.clear_local()


@pytest.fixture
def revokes(django_capture_on_commit_callbacks):
    """Run what commits schedule (the revocation record is written on
    commit; the test's transaction never commits)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


# -- No database read -------------------------------------------------------


def test_a_valid_token_costs_no_query_on_a_catalog_read(
    api_client, staff, customer, auth_client
):
    created = auth_client(staff).post(
        PRODUCTS,
        {
            "id": "kettle-1",
            "name": "Kettle",
            "price": "25.00",
            "stock": 3,
            "category": "Home",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    client = auth_client(customer)
    api_client.get(f"{PRODUCTS}/kettle-1")  # warm any representation cache

    with _AllQueries() as anonymous:
        anonymous_read = api_client.get(f"{PRODUCTS}/kettle-1")
    with _AllQueries() as authenticated:
        authenticated_read = client.get(f"{PRODUCTS}/kettle-1")

    assert anonymous_read.status_code == authenticated_read.status_code == 200
    assert authenticated_read.json() == anonymous_read.json()
    assert authenticated.sql == anonymous.sql


def test_reading_ones_profile_reads_only_the_profile_row(customer, auth_client):
    client = auth_client(customer)

    with _AllQueries() as queries:
        response = client.get(_me(customer))

    assert response.status_code == 200
    assert response.json()["email"] == customer.email
    (query,) = queries.sql
    assert '"users_user"' in query


def test_the_token_carries_what_authorization_needs(staff, auth_client):
    access = auth_client(staff).tokens["access"]

    claims = jwt.decode(access, options={"verify_signature": False})

    assert claims["sub"] == str(staff.id)
    assert claims["email"] == staff.email
    assert claims["is_staff"] is True
    assert claims["is_superuser"] is False
    assert claims["iat"] * 1000 <= claims["iat_ms"] < (claims["iat"] + 1) * 1000


def test_staff_powers_come_from_the_token(staff, customer, auth_client):
    # A staff-only list answers the staff token and refuses the customer's,
    # with no user row read to decide.
    with _AllQueries() as queries:
        as_customer = auth_client(customer).get("/api/v1/users")
    as_staff = auth_client(staff).get("/api/v1/users")

    assert as_customer.status_code == 403
    assert not [q for q in queries.sql if '"users_user"' in q]
    assert as_staff.status_code == 200


# -- Refused tokens ---------------------------------------------------------


def test_refused_tokens_say_why(api_client, customer, auth_client):
    access = auth_client(customer).tokens["access"]
    header, payload, signature = access.split(".")
    kid = jwt.get_unverified_header(access)["kid"]
    claims = jwt.decode(access, options={"verify_signature": False})
    public_pem = settings.SIMPLE_JWT["VERIFYING_KEY"].encode()
    signing_key = settings.SIMPLE_JWT["SIGNING_KEY"]

    def forge(alg: str, sign) -> str:
        head = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
        body = _b64(json.dumps(claims).encode())
        return f"{head}.{body}.{sign(f'{head}.{body}'.encode())}"

    other_sub = {**claims, "sub": str(uuid.uuid4())}
    cases = {
        "Token is signed with an unknown key": jwt.encode(
            claims, _rsa_private_pem(), algorithm="RS256", headers={"kid": "k-2"}
        ),
        "Token has expired": jwt.encode(
            _claims(customer, iat=int(time.time()) - 900, exp=int(time.time()) - 60),
            signing_key,
            algorithm="RS256",
            headers={"kid": kid},
        ),
        "Token is not signed with RS256": forge(
            "HS256",
            lambda data: _b64(hmac.new(public_pem, data, hashlib.sha256).digest()),
        ),
        "Token signature is invalid": ".".join(
            [header, _b64(json.dumps(other_sub).encode()), signature]
        ),
        "Token has the wrong issuer": jwt.encode(
            _claims(customer, iss="someone-else"),
            signing_key,
            algorithm="RS256",
            headers={"kid": kid},
        ),
        "Token is malformed": "not-a-jwt",
    }
    for detail, token in cases.items():
        _refused(api_client.get(_me(customer), **_bearer(token)), detail)
    alg_none = forge("none", lambda data: "")
    _refused(
        api_client.get(_me(customer), **_bearer(alg_none)),
        "Token is not signed with RS256",
    )


def test_a_refresh_token_is_not_an_access_token(api_client, customer, auth_client):
    refresh = auth_client(customer).tokens["refresh"]

    response = api_client.get(_me(customer), **_bearer(refresh))

    _refused(response, "Token is not an access token")


def test_a_token_within_the_leeway_is_still_accepted(api_client, customer):
    now = int(time.time())
    token = jwt.encode(
        _claims(customer, iat=now - 900, exp=now - 2),
        settings.SIMPLE_JWT["SIGNING_KEY"],
        algorithm="RS256",
        headers={"kid": _published_kid(api_client)},
    )

    assert api_client.get(_me(customer), **_bearer(token)).status_code == 200


def test_public_reads_serve_a_caller_with_a_bad_token_as_anonymous(
    api_client, customer
):
    expired = jwt.encode(
        _claims(customer, exp=int(time.time()) - 60),
        settings.SIMPLE_JWT["SIGNING_KEY"],
        algorithm="RS256",
        headers={"kid": _published_kid(api_client)},
    )

    for token in (expired, "not-a-jwt"):
        catalog = api_client.get(PRODUCTS, **_bearer(token))
        jwks = api_client.get("/.well-known/jwks.json", **_bearer(token))
        write = api_client.post(PRODUCTS, {}, format="json", **_bearer(token))
        assert catalog.status_code == 200
        assert jwks.status_code == 200
        assert write.status_code == 401
        assert write.json()["code"] == "token_not_valid"


def test_no_token_is_not_authenticated(api_client, customer):
    response = api_client.get(_me(customer))

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_the_drf_class_verifies_when_the_middleware_did_not_run(
    customer, auth_client, api_client
):
    access = auth_client(customer).tokens["access"]
    factory = APIRequestFactory()
    from rest_framework.request import Request

    good = Request(factory.get("/", **_bearer(access)))
    bad = Request(factory.get("/", **_bearer("not-a-jwt")))

    principal, token = GatewayAuthentication().authenticate(good)
    assert principal == Principal(
        id=customer.id, email=customer.email, is_staff=False, is_superuser=False
    )
    assert principal.is_authenticated and not principal.is_anonymous
    assert token == access
    assert GatewayAuthentication().authenticate(bad) is None
    assert bad._request.principal is None
    assert bad._request.auth_error == "Token is malformed"


# -- Revocation -------------------------------------------------------------


def test_a_password_change_revokes_access_tokens_on_the_next_request(
    api_client, customer, auth_client, revokes
):
    client = auth_client(customer)
    assert client.get(_me(customer)).status_code == 200

    with revokes():
        changed = client.patch(
            _me(customer),
            {
                "password": "brand-new-pass-77",
                "current_password": customer.raw_password,
            },
            format="json",
        )

    assert changed.status_code == 200
    _refused(client.get(_me(customer)), "Token has been revoked")
    login = api_client.post(
        LOGIN, {"email": customer.email, "password": "brand-new-pass-77"}, format="json"
    )
    # Issued just after the revocation (often in the same second): accepted.
    new = api_client.get(_me(customer), **_bearer(login.json()["access"]))
    assert new.status_code == 200


def test_deactivation_in_the_admin_revokes_tokens(
    operator_client, customer, auth_client, revokes
):
    client = operator_client
    customer_client = auth_client(customer)

    with revokes():
        client.post(
            "/admin/users/user/",
            {"action": "deactivate", "_selected_action": [str(customer.id)]},
        )

    _refused(customer_client.get(_me(customer)), "Token has been revoked")
    refresh = customer_client.post(
        REFRESH, {"refresh": customer_client.tokens["refresh"]}, format="json"
    )
    assert refresh.status_code == 401


def test_demoting_staff_in_the_admin_revokes_their_staff_token(
    operator_client, staff, auth_client, revokes
):
    client = operator_client
    staff_client = auth_client(staff)
    assert staff_client.get("/api/v1/users").status_code == 200

    with revokes():
        saved = client.post(
            f"/admin/users/user/{staff.id}/change/",
            {
                "email": staff.email,
                "name": staff.name,
                "is_active": "on",
            },
        )

    assert saved.status_code == 302, saved.content[:2000]
    _refused(staff_client.get("/api/v1/users"), "Token has been revoked")
    refreshed = staff_client.post(
        REFRESH, {"refresh": staff_client.tokens["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200
    assert (
        jwt.decode(refreshed.json()["access"], options={"verify_signature": False})[
            "is_staff"
        ]
        is False
    )


def test_deleting_the_account_revokes_its_tokens(customer, auth_client, revokes):
    client = auth_client(customer)

    with revokes():
        deleted = client.delete(
            _me(customer), {"current_password": customer.raw_password}, format="json"
        )

    assert deleted.status_code == 204
    _refused(client.get(_me(customer)), "Token has been revoked")


def test_logout_everywhere_revokes_every_token_of_every_login(
    api_client, customer, auth_client, revokes
):
    phone = auth_client(customer)
    laptop = auth_client(customer)

    with revokes():
        response = phone.post(LOGOUT_ALL)

    assert response.status_code == 204
    for device in (phone, laptop):
        _refused(device.get(_me(customer)), "Token has been revoked")
        refresh = api_client.post(
            REFRESH, {"refresh": device.tokens["refresh"]}, format="json"
        )
        assert refresh.status_code == 401
    assert auth_client(customer).get(_me(customer)).status_code == 200


def test_logout_everywhere_needs_a_caller(api_client):
    response = api_client.post(LOGOUT_ALL)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_revocation_reaches_other_processes_through_redis(
    customer, auth_client, revokes, settings
):
    import redis

    client = auth_client(customer)
    with revokes():
        client.post(LOGOUT_ALL)
    # Another process has no copy of its own: it reads the shared record.
    revocation.clear_local()

    _refused(client.get(_me(customer)), "Token has been revoked")
    store = redis.Redis.from_url(settings.GATEWAY_REDIS_URL)
    key = revocation.KEY_PREFIX + str(customer.id)
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
    # The record lives as long as the tokens it revokes could, no longer.
    assert lifetime < store.ttl(key) <= lifetime + settings.SIMPLE_JWT["LEEWAY"] + 1


def test_a_rolled_back_change_revokes_nothing(customer, auth_client, revokes):
    client = auth_client(customer)

    with revokes():
        refused = client.patch(
            _me(customer),
            {"password": "brand-new-pass-77", "current_password": "wrong-one-9"},
            format="json",
        )

    assert refused.status_code == 400
    assert client.get(_me(customer)).status_code == 200


def test_with_redis_unreachable_valid_tokens_are_accepted_and_it_is_logged(
    customer, auth_client, settings, caplog
):
    client = auth_client(customer)
    settings.GATEWAY_REDIS_URL = "redis://127.0.0.1:1/0"

    with caplog.at_level(logging.WARNING, logger="apps.gateway.revocation"):
        first = client.get(_me(customer))
        second = client.get(_me(customer))

    assert first.status_code == second.status_code == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    # One attempt per cache period, not one per request.
    assert len(warnings) == 1
    assert "Revocation store unreachable" in warnings[0].getMessage()


# -- A remote users context: JWKS fetched over HTTP ---------------------------


def test_remote_keys_refetch_for_an_unknown_kid_at_most_once_per_interval(caplog):
    keys = RemoteKeys(
        ["http://127.0.0.1:1"], lifespan=300, refetch_interval=30, timeout=0.5
    )

    with caplog.at_level(logging.WARNING, logger="apps.gateway.auth"):
        assert keys.get("made-up-1") is None
        assert keys.get("made-up-2") is None
        assert keys.get("made-up-3") is None

    assert len([r for r in caplog.records if "JWKS fetch" in r.getMessage()]) == 1


class JwksServer:
    """A real server process of the users context, signing with the given
    key pair, serving its JWKS."""

    def __init__(self, port: int, private_pem: str | None = None):
        from conftest import subprocess_database_env
        from tests.servers import ServerProcess

        env = subprocess_database_env()
        if private_pem is not None:
            from config.keys import public_pem_from_private

            env["JWT_PRIVATE_KEY"] = private_pem
            env["JWT_PUBLIC_KEY"] = public_pem_from_private(private_pem)
        self.server = ServerProcess(env, port=port, name="users").start()
        self.url = self.server.url

    def jwks(self) -> list[dict]:
        import httpx

        return httpx.get(self.url + "/.well-known/jwks.json").json()["keys"]

    def stop(self) -> None:
        self.server.close()


MY_ORDERS = "/api/v1/orders"


@pytest.fixture
def jwks_server():
    servers = []

    def start(port: int, private_pem: str | None = None) -> JwksServer:
        server = JwksServer(port, private_pem)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_a_remote_users_context_keys_are_fetched_and_rotation_is_followed(
    api_client, customer, auth_client, jwks_server, settings
):
    # An endpoint of a local context (the users context's own routes are
    # proxied to it when it is remote): verified here, with the remote keys.
    port = free_port()
    first = jwks_server(port)  # the keys this process signs with too
    (first_key,) = first.jwks()
    access = auth_client(customer).tokens["access"]  # logged in here
    settings.CONTEXTS = {
        **settings.CONTEXTS,
        "users": {"mode": "remote", "instances": [first.url]},
    }
    settings.GATEWAY_JWKS_REFETCH_SECONDS = 0
    assert jwt.get_unverified_header(access)["kid"] == first_key["kid"]

    verified = api_client.get(MY_ORDERS, **_bearer(access))
    stranger = jwt.encode(
        _claims(customer),
        _rsa_private_pem(),
        algorithm="RS256",
        headers={"kid": "not-in-the-jwks"},
    )
    refused = api_client.get(MY_ORDERS, **_bearer(stranger))

    assert verified.status_code == 200
    _refused(refused, "Token is signed with an unknown key")

    # The users context rotates its key: a new process with a new key pair.
    first.stop()
    rotated_pem = _rsa_private_pem()
    second = jwks_server(port, rotated_pem)
    (second_key,) = second.jwks()
    assert second_key["kid"] != first_key["kid"]
    rotated = jwt.encode(
        _claims(customer),
        rotated_pem,
        algorithm="RS256",
        headers={"kid": second_key["kid"]},
    )

    with_new_key = api_client.get(MY_ORDERS, **_bearer(rotated))
    with_old_key = api_client.get(MY_ORDERS, **_bearer(access))

    assert with_new_key.status_code == 200
    assert with_new_key.json()["results"] == []
    _refused(with_old_key, "Token is signed with an unknown key")


def test_remote_users_instances_may_be_weighted(
    api_client, customer, auth_client, settings
):
    access = auth_client(customer).tokens["access"]
    settings.CONTEXTS = {
        **settings.CONTEXTS,
        "users": {
            "mode": "remote",
            "instances": [{"url": f"http://127.0.0.1:{free_port()}", "weight": 2}],
        },
    }

    # No JWKS can be fetched from a closed port: refused, not a 500.
    response = api_client.get(MY_ORDERS, **_bearer(access))

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
