"""RS256 JWTs: simplejwt's tokens, with a ``kid`` header and an email claim.

The algorithm is pinned to RS256 on both sides: tokens signed with ``none``
or with HS256 (say, keyed with the public key) are rejected by PyJWT's
``algorithms=["RS256"]`` check in simplejwt's TokenBackend.decode.
"""

import base64
import hashlib
import json
import logging
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from jwt.algorithms import RSAAlgorithm
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

from apps.users import selectors, services
from apps.users.errors import UserNotFound
from apps.users.models import RefreshTokenFamily

logger = logging.getLogger(__name__)


@cache
def public_jwk(public_pem: str) -> dict[str, str]:
    """The JWK of an RSA public key; ``kid`` is its RFC 7638 thumbprint."""
    jwk = RSAAlgorithm.to_jwk(load_pem_public_key(public_pem.encode()), as_dict=True)
    # RFC 7638: the required members only, sorted, no whitespace.
    members = {name: jwk[name] for name in ("e", "kty", "n")}
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


# The refresh token family (one login) a token belongs to: OpenID's
# session id claim, which is what a family is.
FAMILY_CLAIM = "sid"
# An access token's issue instant in milliseconds (ADR 0017).
ISSUED_AT_MS_CLAIM = "iat_ms"


class _ReusedRefreshToken(TokenError):
    """A refresh token that was used before: rotated or logged out."""

    def __init__(self, payload: dict[str, Any]):
        super().__init__("Token is blacklisted")
        self.payload = payload


class RefreshToken(_KeyedToken, tokens.RefreshToken):
    access_token_class = AccessToken

    @classmethod
    def for_user(cls, user, *, family_id=None) -> "RefreshToken":
        """A refresh token for ``user``, in a new family unless one is named.

        It and its access tokens carry what authorization needs (the
        gateway reads no user row): email, is_staff, is_superuser.
        """
        token = super().for_user(user)
        token["email"] = user.email
        token["is_staff"] = bool(user.is_staff)
        token["is_superuser"] = bool(user.is_superuser)
        if family_id is None:
            family_id = services.refresh_token_family_start(user=user).id
        else:
            services.refresh_token_family_issued(family_id=family_id)
        token[FAMILY_CLAIM] = str(family_id)
        return token

    @property
    def access_token(self) -> AccessToken:
        access = super().access_token
        # simplejwt dates the access token's "exp" from this token's creation
        # but its "iat" from its own, a moment later: across a second
        # boundary it lived 899 s. Issued together, they share the instant.
        access.set_iat(at_time=self.current_time)
        # The issue instant to the millisecond: the gateway refuses tokens
        # issued at or before a revocation of their user (ADR 0017), and
        # "iat" has whole seconds only.
        access[ISSUED_AT_MS_CLAIM] = int(self.current_time.timestamp() * 1000)
        return access

    def check_blacklist(self) -> None:
        try:
            super().check_blacklist()
        except TokenError:
            raise _ReusedRefreshToken(self.payload) from None


def _invalid(message: str) -> InvalidToken:
    return InvalidToken({"detail": message, "code": "token_not_valid"})


def _reused(payload: dict[str, Any]) -> InvalidToken:
    """Revoke the family of a refresh token used a second time.

    The error is for the caller to raise; the revocation is already written
    (outside any transaction the error rolls back).
    """
    family_id = payload.get(FAMILY_CLAIM)
    try:
        revoked = family_id is not None and services.refresh_token_family_revoke(
            family_id=family_id,
            reason=RefreshTokenFamily.RevokedReason.REUSED,
        )
    except ValidationError:  # not a UUID: no family to revoke
        revoked = False
    if revoked:
        logger.warning(
            "Refresh token %s of user %s reused: its family %s is revoked",
            payload.get(api_settings.JTI_CLAIM),
            payload.get(api_settings.USER_ID_CLAIM),
            family_id,
        )
    return _invalid("Token was already used: every token of its login is revoked")


def _family_is_active(refresh: RefreshToken) -> bool:
    family_id = refresh.get(FAMILY_CLAIM)
    if family_id is None:
        return True  # issued before families: it starts one when rotated
    try:
        return selectors.refresh_token_family_is_active(family_id=family_id)
    except ValidationError:
        return False


def refresh_token_parse(raw: str) -> RefreshToken:
    """A valid, unexpired, unrevoked refresh token, else InvalidToken (401).

    A token that was already used revokes its whole family (refresh token
    reuse detection, OAuth 2.0 Security BCP, RFC 9700 section 4.14.2).
    """
    try:
        refresh = RefreshToken(raw)
    except _ReusedRefreshToken as exc:
        raise _reused(exc.payload) from None
    except TokenError as exc:
        raise _invalid(str(exc)) from None
    if not _family_is_active(refresh):
        raise _invalid("Token has been revoked")
    return refresh


def refresh_token_rotate(raw: str) -> RefreshToken:
    """Revoke a refresh token and issue its successor in the same family.

    Rejected (401) when the user is gone or inactive, or changed their
    password after the token was issued, or the family was revoked.
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
    return RefreshToken.for_user(user, family_id=refresh.get(FAMILY_CLAIM))


def refresh_token_logout(raw: str) -> None:
    """Revoke a refresh token and the family (the login) it belongs to."""
    refresh = refresh_token_parse(raw)
    refresh_token_revoke(refresh)
    if refresh.get(FAMILY_CLAIM) is not None:
        services.refresh_token_family_revoke(
            family_id=refresh[FAMILY_CLAIM],
            reason=RefreshTokenFamily.RevokedReason.LOGGED_OUT,
        )


def refresh_token_revoke(refresh: RefreshToken) -> None:
    """Revoke a refresh token exactly once.

    The blacklist row is unique per token, so of two concurrent uses of one
    refresh token only one succeeds; the others are a replay (401), which
    revokes the family.
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
            return
        except IntegrityError:
            pass
    raise _reused(refresh.payload)
