"""Authentication at the edge: RS256 access tokens verified with no database
read (DESIGN.md, "Gateway"; ADR 0017).

``GatewayAuthenticationMiddleware`` verifies an ``Authorization: Bearer``
token once per request and sets ``request.principal`` (a ``Principal``, or
None) and ``request.auth_error`` (why a token was refused, or None). Other
middleware may read ``request.principal``. ``GatewayAuthentication`` hands
the result to DRF; a refused token makes the caller anonymous, so public
reads answer it, and endpoints that need authentication answer 401
``token_not_valid`` with the reason (apps/core/problems.py).

Verification: the algorithm is pinned to RS256, the ``kid`` must name a key
of the users context's JWKS (in-process, or fetched from its instances and
cached when that context is remote), ``iss``, ``exp`` (with the leeway) and
``token_type`` are checked, and the user's revocation record is consulted
(apps/gateway/revocation.py).
"""

import logging
import threading
import time
from uuid import UUID

import jwt
from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from jwt import PyJWK, PyJWKClient, PyJWKSet
from rest_framework.authentication import BaseAuthentication

from apps.gateway import revocation
from apps.gateway.balancer import Instance
from apps.gateway.interface import Principal

logger = logging.getLogger(__name__)

ALGORITHM = "RS256"
JWKS_PATH = "/.well-known/jwks.json"


class TokenRefused(Exception):
    """An access token that does not authenticate; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# -- Keys ----------------------------------------------------------------------


def _pyjwk(jwk: dict) -> PyJWK | None:
    try:
        return PyJWK(jwk, algorithm=ALGORITHM)
    except jwt.PyJWKError:
        logger.warning("Ignoring unusable JWK %s", jwk.get("kid"))
        return None


class LocalKeys:
    """The users context's keys, in this process."""

    def __init__(self) -> None:
        self._keys: dict[str, PyJWK | None] = {}

    def get(self, kid: str) -> PyJWK | None:
        from apps.users.interface import published_jwks

        for jwk in published_jwks():
            if jwk.get("kid") == kid:
                if kid not in self._keys:  # a kid is its key's thumbprint
                    self._keys[kid] = _pyjwk(jwk)
                return self._keys[kid]
        return None


class RemoteKeys:
    """The JWKS of a remote users context, fetched and cached.

    Re-fetched every ``lifespan`` seconds, and when a token names a kid not
    in the set (a rotated key), but at most once per ``refetch_interval``
    seconds, so tokens with made-up kids cannot make this process hammer
    the users context. When a fetch fails, the keys fetched before stay in
    use. Instances are tried in turn.
    """

    def __init__(
        self,
        instances: list[str],
        *,
        lifespan: float,
        refetch_interval: float,
        timeout: float,
    ):
        self._clients = [
            PyJWKClient(
                instance.rstrip("/") + JWKS_PATH, cache_jwk_set=False, timeout=timeout
            )
            for instance in instances
        ]
        self.lifespan = lifespan
        self.refetch_interval = refetch_interval
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at = float("-inf")
        self._attempted_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, kid: str) -> PyJWK | None:
        now = time.monotonic()
        if now - self._fetched_at >= self.lifespan:
            self._refresh(now)
        key = self._keys.get(kid)
        if key is None:
            self._refresh(now)
            key = self._keys.get(kid)
        return key

    def _refresh(self, now: float) -> None:
        with self._lock:
            if now - self._attempted_at < self.refetch_interval:
                return  # fetched (or tried) just now
            self._attempted_at = time.monotonic()
            for client in self._clients:
                try:
                    jwk_set = PyJWKSet.from_dict(client.fetch_data())
                except (jwt.PyJWKClientError, jwt.PyJWKSetError, ValueError) as exc:
                    logger.warning("JWKS fetch from %s failed: %s", client.uri, exc)
                    continue
                self._keys = {
                    key.key_id: key
                    for key in jwk_set.keys
                    if key.key_id and key.algorithm_name == ALGORITHM
                }
                self._fetched_at = time.monotonic()
                return


_key_sources: dict[tuple, LocalKeys | RemoteKeys] = {}


def key_source() -> LocalKeys | RemoteKeys:
    """Where this process finds the users context's keys (by settings)."""
    users = settings.CONTEXTS.get("users", {"mode": "local"})
    remote = users.get("mode") == "remote"
    config = (
        remote,
        # "http://host:port" or {"url": ..., "weight": n}, as the balancer
        # reads them.
        tuple(Instance.from_setting(i).url for i in users.get("instances", ()))
        if remote
        else (),
        settings.GATEWAY_JWKS_CACHE_SECONDS,
        settings.GATEWAY_JWKS_REFETCH_SECONDS,
        settings.GATEWAY_JWKS_TIMEOUT_SECONDS,
    )
    source = _key_sources.get(config)
    if source is None:
        if remote:
            source = RemoteKeys(
                list(config[1]),
                lifespan=config[2],
                refetch_interval=config[3],
                timeout=config[4],
            )
        else:
            source = LocalKeys()
        _key_sources[config] = source
    return source


# -- Verification --------------------------------------------------------------


def verify(token: str) -> Principal:
    """The principal of a valid, unrevoked access token; else TokenRefused."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenRefused("Token is malformed") from None
    if header.get("alg") != ALGORITHM:
        raise TokenRefused(f"Token is not signed with {ALGORITHM}")
    kid = header.get("kid")
    key = key_source().get(kid) if isinstance(kid, str) and kid else None
    if key is None:
        raise TokenRefused("Token is signed with an unknown key")
    try:
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[ALGORITHM],
            issuer=settings.JWT_ISSUER,
            leeway=settings.SIMPLE_JWT["LEEWAY"],
            options={"require": ["exp", "iat", "iss", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("Token has expired") from None
    except jwt.InvalidSignatureError:
        raise TokenRefused("Token signature is invalid") from None
    except jwt.InvalidIssuerError:
        raise TokenRefused("Token has the wrong issuer") from None
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(f"Token is invalid: {exc}") from None
    if claims.get("token_type") != "access":
        raise TokenRefused("Token is not an access token")
    try:
        user_id = UUID(str(claims["sub"]))
    except ValueError:
        raise TokenRefused("Token is invalid: bad subject") from None
    issued_at_ms = claims.get("iat_ms")
    if not isinstance(issued_at_ms, int):
        # A token without the claim: the start of its second, so that a
        # revocation in that second covers it (it may cover a token issued
        # just after it too: refused rather than wrongly accepted).
        issued_at_ms = int(claims["iat"]) * 1000
    if revocation.is_revoked(user_id, issued_at_ms):
        raise TokenRefused("Token has been revoked")
    return Principal(
        id=user_id,
        email=str(claims.get("email", "")),
        is_staff=claims.get("is_staff") is True,
        is_superuser=claims.get("is_superuser") is True,
    )


def authenticate_request(request) -> None:
    """Set ``request.principal`` and ``request.auth_error`` from the request's
    ``Authorization: Bearer`` header (both None without one)."""
    request.principal = None
    request.auth_error = None
    request.auth_token = None
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return  # no credentials, or another scheme: not the gateway's
    token = token.strip()
    if not token or " " in token:
        request.auth_error = "Authorization header must be 'Bearer <token>'"
        return
    try:
        request.principal = verify(token)
    except TokenRefused as exc:
        request.auth_error = exc.reason
        return
    request.auth_token = token


class GatewayAuthenticationMiddleware:
    """Authenticate every request's bearer token once (no database read)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        authenticate_request(request)
        return self.get_response(request)


class GatewayAuthentication(BaseAuthentication):
    """DRF authentication from what the gateway found.

    A refused token authenticates nobody: the view answers an anonymous
    caller (public reads) or 401 ``token_not_valid`` with the reason.
    """

    def authenticate(self, request):
        django_request = request._request
        if not hasattr(django_request, "principal"):
            # The middleware did not run (APIRequestFactory, a test client
            # without it): verify here.
            authenticate_request(django_request)
        if django_request.principal is None:
            return None
        return django_request.principal, django_request.auth_token

    def authenticate_header(self, request):
        if getattr(request._request, "auth_error", None):
            return 'Bearer realm="api", error="invalid_token"'
        return 'Bearer realm="api"'


class GatewayAuthenticationScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme: a Bearer JWT (the name is the one the
    schema had under simplejwt's authentication)."""

    target_class = GatewayAuthentication
    name = "jwtAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="HTTP_AUTHORIZATION", token_prefix="Bearer", bearer_format="JWT"
        )
