import json
from uuid import UUID

from django.conf import settings
from django.http import HttpResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from apps.core.openapi import paginated, problems
from apps.core.pagination import PageNumberPagination
from apps.core.serializers import PageQuerySerializer
from apps.core.views import ApiView
from apps.users import cache, selectors, services
from apps.users.errors import UserNotFound
from apps.users.serializers import (
    JwksSerializer,
    LoginSerializer,
    RefreshSerializer,
    TokenPairSerializer,
    UserCreateSerializer,
    UserDeleteSerializer,
    UserSerializer,
    UserUpdateSerializer,
)
from apps.users.tokens import (
    RefreshToken,
    published_jwks,
    refresh_token_logout,
    refresh_token_rotate,
)

_RENDERER = JSONRenderer()


def _profile(user_id: UUID) -> bytes | None:
    """A user's representation as ``GET /users/<id>`` answers it, rendered
    (what the profile cache keeps); None for no such user."""
    try:
        user = selectors.user_get(user_id=user_id)
    except UserNotFound:
        return None
    return _RENDERER.render(UserSerializer(user).data)


def _renders_like_json(request) -> bool:
    """Whether DRF would render a body as ``_RENDERER`` does: a JSON
    renderer (``application/json`` or problem+json) with no ``indent``
    asked for in the Accept header."""
    return isinstance(request.accepted_renderer, JSONRenderer) and (
        "indent" not in request.accepted_media_type
    )


def _token_pair(refresh: RefreshToken) -> dict:
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    return {
        "access": str(refresh.access_token),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(lifetime.total_seconds()),
    }


class PublicView(ApiView):
    """An endpoint that needs no credentials and ignores any sent.

    A stale Authorization header must not stop a login. DRF turns 401 into
    403 on views without authenticators unless they name a scheme.
    """

    permission_classes = [AllowAny]
    authentication_classes = []

    def get_authenticate_header(self, request):
        return 'Bearer realm="api"'


class TokenView(PublicView):
    """An endpoint that answers tokens: no cache may keep its responses.

    RFC 6749 section 5.1 asks token responses for ``Cache-Control: no-store``
    and ``Pragma: no-cache`` (HTTP/1.0 caches); errors get them too.
    """

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        return response


class UserCollectionView(ApiView):
    query_methods = frozenset({"get"})

    def get_permissions(self):
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated(), IsAdminUser()]

    def get_authenticators(self):
        # Registration is public: a stale token must not block it.
        if self.request is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    @extend_schema(
        operation_id="users_list",
        summary="List users (staff only)",
        parameters=[PageQuerySerializer],
        responses={200: paginated(UserSerializer), **problems(400, 401, 403)},
    )
    def get(self, request):
        PageQuerySerializer(data=request.query_params.dict()).is_valid(
            raise_exception=True
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(selectors.user_list(), request, view=self)
        return paginator.get_paginated_response(UserSerializer(page, many=True).data)

    @extend_schema(
        operation_id="users_register",
        summary="Register a new user",
        request=UserCreateSerializer,
        responses={201: UserSerializer, **problems(400, 409)},
        auth=[],
    )
    def post(self, request):
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_create(**serializer.validated_data)
        location = reverse("users:detail", kwargs={"user_id": user.id})
        return Response(
            UserSerializer(user).data,
            status=status.HTTP_201_CREATED,
            headers={"Location": location},
        )


class UserDetailView(ApiView):
    # Deleting one's own account takes the current password in a body.
    body_methods = frozenset({"put", "patch", "delete"})

    @extend_schema(
        operation_id="users_retrieve",
        summary="A user (themself, or anyone for staff)",
        responses={200: UserSerializer, **problems(401, 404)},
    )
    def get(self, request, user_id):
        # Who may see the user is decided on the principal, every request;
        # only the row's rendered JSON is cached (ADR 0031).
        selectors.user_check_visible(actor=request.user, user_id=user_id)
        body = cache.cached_profile(user_id, lambda: _profile(user_id))
        if body is None:
            raise UserNotFound(f"No user with id {user_id}.")
        if _renders_like_json(request):
            return HttpResponse(body, content_type=request.accepted_renderer.media_type)
        return Response(json.loads(body))

    @extend_schema(
        operation_id="users_replace",
        summary="Replace a user's profile",
        request=UserUpdateSerializer,
        responses={200: UserSerializer, **problems(400, 401, 404, 409)},
    )
    def put(self, request, user_id):
        return self._update(request, user_id, partial=False)

    @extend_schema(
        operation_id="users_update",
        summary="Update part of a user's profile",
        request=UserUpdateSerializer,
        responses={200: UserSerializer, **problems(400, 401, 404, 409)},
    )
    def patch(self, request, user_id):
        return self._update(request, user_id, partial=True)

    @extend_schema(
        operation_id="users_delete",
        summary="Delete a user",
        description=(
            "Deleting one's own account needs the current password in a JSON "
            'body, `{"current_password": "..."}`; staff deleting someone '
            "else send none."
        ),
        responses={204: None, **problems(400, 401, 404)},
    )
    def delete(self, request, user_id):
        user = selectors.user_get_visible(actor=request.user, user_id=user_id)
        serializer = UserDeleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_delete(actor=request.user, user=user, **serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _update(self, request, user_id, *, partial):
        user = selectors.user_get_visible(actor=request.user, user_id=user_id)
        serializer = UserUpdateSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(
            actor=request.user, user=user, **serializer.validated_data
        )
        return Response(UserSerializer(user).data)


class LoginView(TokenView):
    @extend_schema(
        operation_id="users_login",
        summary="Log in: email and password for an access and a refresh token",
        request=LoginSerializer,
        responses={200: TokenPairSerializer, **problems(400, 401)},
        auth=[],
    )
    def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_authenticate(**serializer.validated_data)
        return Response(_token_pair(RefreshToken.for_user(user)))


class TokenRefreshView(TokenView):
    @extend_schema(
        operation_id="users_token_refresh",
        summary="Trade a refresh token for a new pair (the old one is revoked)",
        request=RefreshSerializer,
        responses={200: TokenPairSerializer, **problems(400, 401)},
        auth=[],
    )
    def post(self, request):
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refresh = refresh_token_rotate(serializer.validated_data["refresh"])
        return Response(_token_pair(refresh))


class LogoutView(PublicView):
    @extend_schema(
        operation_id="users_logout",
        summary="Log out: revoke a refresh token",
        request=RefreshSerializer,
        responses={204: None, **problems(400, 401)},
        auth=[],
    )
    def post(self, request):
        serializer = RefreshSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refresh_token_logout(serializer.validated_data["refresh"])
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllView(ApiView):
    body_methods = frozenset()
    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="users_logout_all",
        summary="Log out everywhere: revoke every token of the caller",
        description=(
            "Revokes the refresh tokens of every login of the caller and "
            "every access token issued until now, this one included; they "
            "are refused from the next request."
        ),
        request=None,
        responses={204: None, **problems(401)},
    )
    def post(self, request):
        services.user_tokens_revoke_all(user_id=request.user.id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class JwksView(PublicView):
    @extend_schema(
        operation_id="jwks",
        summary="Public keys that verify the access tokens (JWKS)",
        responses={200: JwksSerializer},
        auth=[],
    )
    def get(self, request):
        response = Response({"keys": published_jwks()})
        response["Cache-Control"] = "public, max-age=300"
        return response
