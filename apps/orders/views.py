from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from apps.core.errors import PermissionDenied
from apps.core.openapi import paginated, problems
from apps.core.pagination import PageNumberPagination
from apps.core.views import ApiView
from apps.orders import selectors, services
from apps.orders.serializers import (
    OrderCancelSerializer,
    OrderPlaceSerializer,
    OrderQuerySerializer,
    OrderSerializer,
)


def _is_staff(request) -> bool:
    return bool(request.user.is_staff)


def _visible_order(request, order_id):
    """The order, if the caller may see it: staff see every order, a
    customer only their own (another's is a 404, as if it did not exist)."""
    owner = None if _is_staff(request) else request.user.id
    return selectors.order_get(order_id=order_id, user_id=owner)


def _location(order_id) -> str:
    return reverse("orders:detail", kwargs={"order_id": order_id})


class OrderCollectionView(ApiView):
    query_methods = frozenset({"get"})

    @extend_schema(
        operation_id="orders_list",
        summary="Orders, newest first: the caller's own (staff: everyone's)",
        parameters=[OrderQuerySerializer],
        responses={200: paginated(OrderSerializer), **problems(400, 401)},
    )
    def get(self, request):
        query = OrderQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        values = query.validated_data
        staff = _is_staff(request)
        if "user_id" in values and not staff:
            raise ValidationError({"user_id": ["Only staff may filter by user."]})
        orders = selectors.order_list(
            user_id=values.get("user_id") if staff else request.user.id,
            status=values.get("status"),
        )
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(
            [selectors.order_representation(order) for order in page]
        )

    @extend_schema(
        operation_id="orders_create",
        summary="Place an order (PENDING), priced by the catalog",
        description=(
            "With an `Idempotency-Key`, a retry with the same body answers the "
            "first response and creates nothing; the same key with another "
            "body is a 409 `idempotency_key_reused`. Keys are per user."
        ),
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                location=OpenApiParameter.HEADER,
                required=False,
                description="1 to 255 printable ASCII characters",
            )
        ],
        request=OrderPlaceSerializer,
        responses={201: OrderSerializer, **problems(400, 401, 403, 409)},
    )
    def post(self, request):
        serializer = OrderPlaceSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = serializer.validated_data
        key = request.headers.get("Idempotency-Key")
        order = services.order_place(
            user_id=request.user.id,
            items=[(line["product_id"], line["quantity"]) for line in values["items"]],
            payment_method=values["payment_method"],
            idempotency_key=key,
        )
        if key is None:
            status_code = status.HTTP_201_CREATED
            body = selectors.order_representation(order)
        else:
            # The first answer to this key, for the first request and for
            # every retry.
            status_code, body = selectors.idempotent_response(
                user_id=request.user.id, key=key
            )
        return Response(
            body, status=status_code, headers={"Location": _location(order.id)}
        )


class OrderDetailView(ApiView):
    @extend_schema(
        operation_id="orders_retrieve",
        summary="An order with its items and status history",
        responses={200: OrderSerializer, **problems(401, 404)},
    )
    def get(self, request, order_id):
        order = _visible_order(request, order_id)
        return Response(selectors.order_representation(order))


class OrderCancelView(ApiView):
    @extend_schema(
        operation_id="orders_cancel",
        summary="Cancel a pending or confirmed order (its owner or staff)",
        request=OrderCancelSerializer,
        responses={200: OrderSerializer, **problems(400, 401, 404, 409)},
    )
    def post(self, request, order_id):
        serializer = OrderCancelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = _visible_order(request, order_id)
        if order.user_id == request.user.id:
            actor = "customer"
        else:
            actor = f"staff:{request.user.email}"
        order = services.order_cancel(
            order_id=order.id, actor=actor, reason=serializer.validated_data["reason"]
        )
        return Response(selectors.order_representation(order))


class _StaffTransitionView(ApiView):
    """A status change only staff make; a customer gets 403 on their own
    order and 404 on anyone else's."""

    body_methods = frozenset()

    # The service applying the change: order_ship, order_complete.
    service: staticmethod

    def post(self, request, order_id):
        order = _visible_order(request, order_id)
        if not _is_staff(request):
            raise PermissionDenied("Only staff change an order's delivery status.")
        order = self.service(order_id=order.id, actor=f"staff:{request.user.email}")
        return Response(selectors.order_representation(order))


class OrderShipView(_StaffTransitionView):
    service = staticmethod(services.order_ship)

    @extend_schema(
        operation_id="orders_ship",
        summary="Mark a confirmed order shipped (staff)",
        request=None,
        responses={200: OrderSerializer, **problems(401, 403, 404, 409)},
    )
    def post(self, request, order_id):
        return super().post(request, order_id)


class OrderCompleteView(_StaffTransitionView):
    service = staticmethod(services.order_complete)

    @extend_schema(
        operation_id="orders_complete",
        summary="Mark a shipped order completed (staff)",
        request=None,
        responses={200: OrderSerializer, **problems(401, 403, 404, 409)},
    )
    def post(self, request, order_id):
        return super().post(request, order_id)
