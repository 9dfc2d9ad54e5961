import base64
import hashlib
import hmac
import json
import time
from datetime import timedelta

import jwt
import pytest
from django.conf import settings

from tests.problems import assert_problem

LOGIN = "/api/v1/users/login"
REFRESH = "/api/v1/users/token/refresh"
LOGOUT = "/api/v1/users/logout"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwks_key(api_client):
    response = api_client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    return key


def _me(client, user_id, token):
    return client.get(f"/api/v1/users/{user_id}", HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.mark.django_db
def test_login_issues_rs256_tokens_verifiable_with_the_jwks(api_client, customer):
    response = api_client.post(
        LOGIN,
        {"email": "CUSTOMER@example.com", "password": customer.raw_password},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    jwk = _jwks_key(api_client)
    header = jwt.get_unverified_header(body["access"])
    assert header["alg"] == "RS256"
    assert header["kid"] == jwk["kid"]
    public_key = jwt.PyJWK(jwk).key
    claims = jwt.decode(
        body["access"], public_key, algorithms=["RS256"], issuer=settings.JWT_ISSUER
    )
    assert claims["sub"] == str(customer.id)
    assert claims["email"] == "customer@example.com"
    assert {"iat", "exp", "jti", "iss"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 15 * 60


@pytest.mark.django_db
@pytest.mark.parametrize(
    "credentials",
    [
        {"email": "customer@example.com", "password": "wrong-password-1"},
        {"email": "nobody@example.com", "password": "correct-horse-42"},
    ],
)
def test_wrong_email_or_password_get_the_same_401(api_client, customer, credentials):
    response = api_client.post(LOGIN, credentials, format="json")

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "invalid_credentials"
    assert body["detail"] == "Email or password is incorrect."


@pytest.mark.django_db
def test_inactive_user_cannot_log_in(api_client, customer):
    customer.is_active = False
    customer.save()

    response = api_client.post(
        LOGIN,
        {"email": customer.email, "password": customer.raw_password},
        format="json",
    )

    assert_problem(response, 401, "invalid_credentials")


@pytest.mark.django_db
def test_login_bad_input_is_400(api_client):
    response = api_client.post(LOGIN, {"email": "x"}, format="json")

    assert_problem(response, 400, "validation_error")
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"email", "password"}


@pytest.mark.django_db
def test_refresh_rotates_and_the_old_refresh_token_is_revoked(
    api_client, customer, auth_client
):
    old = auth_client(customer).tokens["refresh"]

    first = api_client.post(REFRESH, {"refresh": old}, format="json")
    replay = api_client.post(REFRESH, {"refresh": old}, format="json")

    assert first.status_code == 200
    new = first.json()
    assert new["refresh"] != old
    assert _me(api_client, customer.id, new["access"]).status_code == 200
    assert replay.status_code == 401
    assert replay.json()["code"] == "token_not_valid"


def _rotate(client, refresh: str):
    return client.post(REFRESH, {"refresh": refresh}, format="json")


@pytest.mark.django_db
def test_a_replayed_refresh_token_revokes_every_token_of_its_login(
    api_client, customer, auth_client
):
    # OAuth 2.0 Security BCP (RFC 9700) 4.14.2: reuse of a rotated refresh
    # token means one of two holders is an attacker, and the server cannot
    # tell which, so the whole family goes.
    first = auth_client(customer).tokens["refresh"]
    other_device = auth_client(customer).tokens["refresh"]
    second = _rotate(api_client, first).json()["refresh"]
    third = _rotate(api_client, second).json()["refresh"]

    replay = _rotate(api_client, first)
    current = _rotate(api_client, third)

    assert replay.status_code == 401
    assert replay.json()["code"] == "token_not_valid"
    assert current.status_code == 401
    assert current.json()["code"] == "token_not_valid"
    assert _rotate(api_client, other_device).status_code == 200


@pytest.mark.django_db
def test_a_refresh_token_replayed_after_logout_is_refused(
    api_client, customer, auth_client
):
    first = auth_client(customer).tokens["refresh"]
    second = _rotate(api_client, first).json()["refresh"]
    api_client.post(LOGOUT, {"refresh": second}, format="json")

    assert_problem(_rotate(api_client, first), 401, "token_not_valid")
    assert_problem(_rotate(api_client, second), 401, "token_not_valid")


@pytest.mark.django_db
def test_a_refresh_token_from_before_families_rotates_into_a_new_one(
    api_client, customer
):
    # Tokens issued before the family claim existed keep working until they
    # expire; their successor starts a family of its own.
    from apps.users.tokens import RefreshToken

    token = RefreshToken.for_user(customer)
    del token["sid"]

    rotated = _rotate(api_client, str(token))
    replay = _rotate(api_client, str(token))

    assert rotated.status_code == 200
    assert "sid" in jwt.decode(
        rotated.json()["refresh"], options={"verify_signature": False}
    )
    assert replay.status_code == 401


@pytest.mark.django_db
def test_logout_revokes_the_refresh_token(api_client, customer, auth_client):
    refresh = auth_client(customer).tokens["refresh"]

    logout = api_client.post(LOGOUT, {"refresh": refresh}, format="json")
    after = api_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert logout.status_code == 204
    assert_problem(after, 401, "token_not_valid")


@pytest.mark.django_db
def test_an_access_token_is_not_a_refresh_token(api_client, customer, auth_client):
    access = auth_client(customer).tokens["access"]

    response = api_client.post(REFRESH, {"refresh": access}, format="json")

    assert_problem(response, 401, "token_not_valid")


@pytest.mark.django_db
def test_refresh_token_cannot_be_used_as_access_token(
    api_client, customer, auth_client
):
    refresh = auth_client(customer).tokens["refresh"]

    assert _me(api_client, customer.id, refresh).status_code == 401


def _forge(header: dict, claims: dict, sign) -> str:
    signing_input = (
        _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    )
    return signing_input + "." + sign(signing_input.encode())


def _valid_claims(user) -> dict:
    now = int(time.time())
    return {
        "token_type": "access",
        "sub": str(user.id),
        "email": user.email,
        "iat": now,
        "exp": now + 600,
        "jti": "x" * 32,
        "iss": settings.JWT_ISSUER,
    }


@pytest.mark.django_db
def test_forged_and_broken_tokens_are_rejected_with_401(
    api_client, customer, auth_client
):
    access = auth_client(customer).tokens["access"]
    claims = jwt.decode(access, options={"verify_signature": False})
    public_pem = settings.SIMPLE_JWT["VERIFYING_KEY"].encode()
    header, payload, signature = access.split(".")
    staff_claims = {**claims, "sub": "00000000-0000-0000-0000-000000000001"}

    forged = {
        "tampered payload": ".".join(
            [header, _b64(json.dumps(staff_claims).encode()), signature]
        ),
        "alg none": _forge({"alg": "none", "typ": "JWT"}, claims, lambda _: ""),
        "HS256 keyed with the public key": _forge(
            {"alg": "HS256", "typ": "JWT"},
            claims,
            lambda data: _b64(hmac.new(public_pem, data, hashlib.sha256).digest()),
        ),
        "garbage": "not-a-jwt",
    }

    for name, token in forged.items():
        response = _me(api_client, customer.id, token)
        assert response.status_code == 401, name
        assert response["Content-Type"] == "application/problem+json", name
        assert response.json()["code"] == "token_not_valid", name


@pytest.mark.django_db
def test_expired_token_is_401(api_client, customer):
    from apps.users.tokens import AccessToken

    token = AccessToken.for_user(customer)
    token.set_exp(lifetime=-timedelta(minutes=1))

    response = _me(api_client, customer.id, str(token))

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.django_db
def test_token_of_a_deactivated_user_is_401(
    customer, auth_client, django_capture_on_commit_callbacks
):
    from apps.users.services import user_set_active

    client = auth_client(customer)
    # Deactivation revokes the user's tokens when it commits (ADR 0017).
    with django_capture_on_commit_callbacks(execute=True):
        user_set_active(user_ids=[customer.id], is_active=False)

    response = client.get(f"/api/v1/users/{customer.id}")
    assert_problem(response, 401, "token_not_valid")
    assert response.json()["detail"] == "Token has been revoked"


@pytest.mark.django_db
def test_missing_token_is_401_with_www_authenticate(api_client, customer):
    response = api_client.get(f"/api/v1/users/{customer.id}")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.django_db(transaction=True)
def test_a_refresh_token_replayed_concurrently_works_only_once(customer, auth_client):
    import threading

    from django.db import connections
    from rest_framework.test import APIClient

    refresh = auth_client(customer).tokens["refresh"]
    start = threading.Barrier(6)
    responses = []

    def use() -> None:
        try:
            start.wait(timeout=30)
            responses.append(
                APIClient().post(REFRESH, {"refresh": refresh}, format="json")
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401, 401, 401]
    # The replays revoked the family, the winner's new token with it.
    (winner,) = [r for r in responses if r.status_code == 200]
    assert_problem(
        _rotate(APIClient(), winner.json()["refresh"]), 401, "token_not_valid"
    )


@pytest.mark.django_db
def test_token_responses_are_never_stored_by_caches(api_client, customer):
    login = api_client.post(
        LOGIN,
        {"email": customer.email, "password": customer.raw_password},
        format="json",
    )
    refresh = api_client.post(
        REFRESH, {"refresh": login.json()["refresh"]}, format="json"
    )
    refused = api_client.post(
        LOGIN, {"email": customer.email, "password": "wrong-password-1"}, format="json"
    )

    assert (login.status_code, refresh.status_code, refused.status_code) == (
        200,
        200,
        401,
    )
    for response in (login, refresh, refused):
        assert response["Cache-Control"] == "no-store"
        assert response["Pragma"] == "no-cache"


@pytest.mark.django_db
@pytest.mark.parametrize("header", [{"kid": "a-retired-key"}, {"kid": ""}, {}])
def test_a_token_whose_kid_is_not_a_published_key_is_refused(
    api_client, customer, auth_client, header
):
    # Signed with the right key all the same: what a token names must be
    # what verifies it, so a rotated-out key cannot keep working.
    tokens = auth_client(customer).tokens
    private = settings.SIMPLE_JWT["SIGNING_KEY"]

    def resign(token: str) -> str:
        claims = jwt.decode(token, options={"verify_signature": False})
        return jwt.encode(claims, private, algorithm="RS256", headers=header)

    if "kid" not in header:
        # PyJWT adds no kid unless asked; check that none is there.
        assert "kid" not in jwt.get_unverified_header(resign(tokens["access"]))
    access = _me(api_client, customer.id, resign(tokens["access"]))
    refresh = api_client.post(
        REFRESH, {"refresh": resign(tokens["refresh"])}, format="json"
    )

    assert access.status_code == refresh.status_code == 401
    assert access.json()["code"] == refresh.json()["code"] == "token_not_valid"


@pytest.mark.django_db
def test_an_access_token_lives_exactly_its_lifetime_whenever_it_is_built(customer):
    """The access token is built a moment after its refresh token (database
    writes in between); across a second boundary its lifetime used to be one
    second short."""
    from datetime import timedelta

    from apps.users.tokens import RefreshToken

    refresh = RefreshToken.for_user(customer)
    # As if the access token were built 1.5 s after the refresh token.
    refresh.current_time -= timedelta(seconds=1.5)
    refresh.set_exp(from_time=refresh.current_time)
    refresh.set_iat(at_time=refresh.current_time)

    access = refresh.access_token

    assert access["exp"] - access["iat"] == 15 * 60
    assert access["iat"] == refresh["iat"]
