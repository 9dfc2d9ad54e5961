"""The orders context's service interface for other contexts (the saga).

Returns frozen DTOs, never model instances. Statuses are the strings
"pending", "confirmed", "shipped", "completed", "cancelled".
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from apps.gateway.interface import ContextBinding
from apps.orders import selectors, services
from apps.orders.errors import (
    IdempotencyKeyReused,
    IllegalTransition,
    InsufficientStock,
    InvalidIdempotencyKey,
    OrderNotFound,
    ProductsUnavailable,
    ShortItem,
    UnavailableProduct,
    UserInactive,
)

__all__ = [
    "IdempotencyKeyReused",
    "IllegalTransition",
    "InsufficientStock",
    "InvalidIdempotencyKey",
    "OrderDTO",
    "OrderItemDTO",
    "OrderNotFound",
    "ProductsUnavailable",
    "ShortItem",
    "UnavailableProduct",
    "UserInactive",
    "cancel_order",
    "confirm_order",
    "get_order",
    "place_order",
]


@dataclass(frozen=True)
class OrderItemDTO:
    product_id: str
    product_name: str
    category: str
    quantity: int
    unit_price: Decimal

    @classmethod
    def from_model(cls, item) -> "OrderItemDTO":
        return cls(
            product_id=item.product_id,
            product_name=item.product_name,
            category=item.category,
            quantity=item.quantity,
            unit_price=item.price,
        )


@dataclass(frozen=True)
class OrderDTO:
    id: UUID
    user_id: UUID
    status: str
    total_amount: Decimal
    # The payment provider's token, for the saga's payment step.
    payment_method: str
    cancel_reason: str
    items: tuple[OrderItemDTO, ...]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, order) -> "OrderDTO":
        return cls(
            id=order.id,
            user_id=order.user_id,
            status=order.status,
            total_amount=order.total_amount,
            payment_method=order.payment_method,
            cancel_reason=order.cancel_reason,
            items=tuple(OrderItemDTO.from_model(i) for i in order.items.all()),
            created_at=order.created_at,
            updated_at=order.updated_at,
        )


# Local or remote by settings.CONTEXTS["orders"] (apps.gateway.bindings).
binding = ContextBinding(
    "orders",
    errors=(
        IdempotencyKeyReused,
        IllegalTransition,
        InsufficientStock,
        InvalidIdempotencyKey,
        OrderNotFound,
        ProductsUnavailable,
        UserInactive,
    ),
)


@binding.expose(idempotent=True)
def get_order(order_id: UUID) -> OrderDTO:
    """Return the order ``order_id`` with its items.

    Raises:
        OrderNotFound: no such order.
    """
    # The DTO has no history: no need to load it (the saga calls this often).
    return OrderDTO.from_model(selectors.order_get(order_id=order_id, history=False))


@binding.expose(idempotent=False)
def confirm_order(*, order_id: UUID, reason: str = "") -> OrderDTO:
    """Move a PENDING order to CONFIRMED (payment succeeded), recording the
    history row and the ``order.confirmed`` event in one transaction.

    Args:
        order_id: the order.
        reason: kept in the history and the event (may be empty).

    Returns the confirmed order.

    Raises:
        OrderNotFound: no such order.
        IllegalTransition: the order is not PENDING; ``current_status``
            says what it is (a retry finds "confirmed").
    """
    order = services.order_confirm(order_id=order_id, actor="system", reason=reason)
    return OrderDTO.from_model(order)


@binding.expose(idempotent=False)
def cancel_order(*, order_id: UUID, reason: str, actor: str = "system") -> OrderDTO:
    """Move a PENDING or CONFIRMED order to CANCELLED (a saga step failed
    and its compensations ran), recording the history row and the
    ``order.cancelled`` event in one transaction.

    Args:
        order_id: the order.
        reason: why, shown to the customer (up to 500 characters).
        actor: who cancels, for the history ("system" for the saga).

    Returns the cancelled order.

    Raises:
        OrderNotFound: no such order.
        IllegalTransition: the order is SHIPPED, COMPLETED or already
            CANCELLED; ``current_status`` says which.
        InvalidInput: ``reason`` is too long.
    """
    order = services.order_cancel(order_id=order_id, actor=actor, reason=reason)
    return OrderDTO.from_model(order)


@binding.expose(idempotent=False)
def place_order(
    *,
    user_id: UUID,
    items: list[tuple[str, int]],
    payment_method: str = "",
    idempotency_key: str | None = None,
) -> OrderDTO:
    """Place an order in PENDING, priced by the catalog, as POST
    /api/v1/orders does (operators' tools: ``saga_chaos``).

    Args:
        user_id: the customer.
        items: (product id, quantity) pairs; a repeated product is merged.
        payment_method: the payment provider's token ("" = its default).
        idempotency_key: the same key and items again return the first order.

    Returns the order.

    Raises:
        InvalidInput: no items, too many, or a quantity out of range.
        ProductsUnavailable: unknown or archived products (each named).
        InsufficientStock: short items at placement (each named).
        IdempotencyKeyReused: the key was used with other items.
        UserInactive: the customer is deactivated.
    """
    order = services.order_place(
        user_id=user_id,
        items=items,
        payment_method=payment_method,
        idempotency_key=idempotency_key,
    )
    return OrderDTO.from_model(order)
