"""RS256 JWTs: simplejwt's tokens, with a ``kid`` header and an email claim.

The algorithm is pinned to RS256 on both sides: tokens signed with ``none``
or with HS256 (say, keyed with the public key) are rejected by PyJWT's
``algorithms=["RS256"]`` check in simplejwt's TokenBackend.decode.
"""

import base64
import hashlib
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from rest_framework_simplejwt import tokens
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import (
    InvalidToken,
    TokenBackendError,
    TokenError,
)
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import (
    BlacklistedToken,
    OutstandingToken,
)
from rest_framework_simplejwt.utils import get_md5_hash_password

from apps.users import selectors
from apps.users.interface import UserNotFound


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@cache
def public_jwk(public_pem: str) -> dict[str, str]:
    """The JWK of an RSA public key; ``kid`` is its RFC 7638 thumbprint."""
    numbers = load_pem_public_key(public_pem.encode()).public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    thumbprint = hashlib.sha256(canonical.encode()).digest()
    kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
    return {**members, "kid": kid, "use": "sig", "alg": "RS256"}


def published_jwks() -> list[dict[str, str]]:
    """The keys that verify tokens, as served at /.well-known/jwks.json."""
    return [public_jwk(api_settings.VERIFYING_KEY)]


class KeyedTokenBackend(TokenBackend):
    """simplejwt's backend, with the signing key's ``kid`` in the header.

    A token whose ``kid`` names no published key is refused before its
    signature is checked, so a key taken out of the JWKS stops verifying
    tokens at once, whichever key they were signed with.
    """

    def decode(self, token: str, verify: bool = True) -> dict[str, Any]:
        if verify:
            try:
                kid = jwt.get_unverified_header(token).get("kid")
            except jwt.InvalidTokenError as exc:
                raise TokenBackendError("Token is invalid") from exc
            if kid not in {key["kid"] for key in published_jwks()}:
                raise TokenBackendError("Token is signed with an unknown key")
        return super().decode(token, verify)

    def encode(self, payload: dict[str, Any]) -> str:
        jwt_payload = payload.copy()
        if self.audience is not None:
            jwt_payload["aud"] = self.audience
        if self.issuer is not None:
            jwt_payload["iss"] = self.issuer
        return jwt.encode(
            jwt_payload,
            self.prepared_signing_key,
            algorithm=self.algorithm,
            headers={"kid": public_jwk(self.verifying_key)["kid"]},
            json_encoder=self.json_encoder,
        )


@cache
def token_backend() -> KeyedTokenBackend:
    return KeyedTokenBackend(
        api_settings.ALGORITHM,
        api_settings.SIGNING_KEY,
        api_settings.VERIFYING_KEY,
        api_settings.AUDIENCE,
        api_settings.ISSUER,
        api_settings.JWK_URL,
        api_settings.LEEWAY,
        api_settings.JSON_ENCODER,
    )


class _KeyedToken:
    @property
    def token_backend(self) -> KeyedTokenBackend:
        return token_backend()


class AccessToken(_KeyedToken, tokens.AccessToken):
    pass


class RefreshToken(_KeyedToken, tokens.RefreshToken):
    access_token_class = AccessToken

    @classmethod
    def for_user(cls, user) -> "RefreshToken":
        token = super().for_user(user)
        token["email"] = user.email
        return token


def _invalid(message: str) -> InvalidToken:
    return InvalidToken({"detail": message, "code": "token_not_valid"})


def refresh_token_parse(raw: str) -> RefreshToken:
    """A valid, unexpired, unrevoked refresh token, else InvalidToken (401)."""
    try:
        return RefreshToken(raw)
    except TokenError as exc:
        raise _invalid(str(exc)) from None


def refresh_token_rotate(raw: str) -> RefreshToken:
    """Revoke a refresh token and issue a new one for the same user.

    Rejected (401) when the user is gone or inactive, or changed their
    password after the token was issued.
    """
    refresh = refresh_token_parse(raw)
    try:
        user = selectors.user_get(user_id=refresh[api_settings.USER_ID_CLAIM])
    except (UserNotFound, KeyError, ValueError, ValidationError):
        raise _invalid("Token is invalid") from None
    if not user.is_active:
        raise _invalid("Token is invalid")
    claim = api_settings.REVOKE_TOKEN_CLAIM
    if refresh.get(claim) != get_md5_hash_password(user.password):
        raise _invalid("Token has been revoked")
    refresh_token_revoke(refresh)
    return RefreshToken.for_user(user)


def refresh_token_revoke(refresh: RefreshToken) -> None:
    """Revoke a refresh token exactly once.

    The blacklist row is unique per token, so of two concurrent uses of one
    refresh token (a replay) only one succeeds; the other is a 401.
    """
    with transaction.atomic():
        outstanding, _ = OutstandingToken.objects.get_or_create(
            jti=refresh[api_settings.JTI_CLAIM],
            defaults={
                "token": str(refresh),
                "expires_at": datetime.fromtimestamp(refresh["exp"], tz=UTC),
            },
        )
        try:
            with transaction.atomic():
                BlacklistedToken.objects.create(token=outstanding)
        except IntegrityError:
            raise _invalid("Token is blacklisted") from None
