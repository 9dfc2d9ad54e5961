"""Orders writes: placement and the status lifecycle.

Every change of an order writes its history row and its event (outbox) in
the same transaction on the ``orders`` alias. The catalog is read through
its interface before that transaction opens; stock is not reserved here:
the create-order saga, started by the ``order.created`` event, reserves it.
"""

import hashlib
import json
import re
from collections.abc import Sequence
from decimal import Decimal
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, router, transaction

from apps.core.errors import InvalidInput
from apps.core.validation import full_clean
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
from apps.orders.events import order_event_record
from apps.orders.models import (
    MAX_LINE_QUANTITY,
    IdempotencyRecord,
    Order,
    OrderItem,
    OrderStatus,
    OrderStatusChange,
    product_id_validator,
)
from apps.orders.selectors import order_representation
from apps.products.interface import get_products
from apps.users.interface import get_user

MAX_ORDER_LINES = 50
MAX_TOTAL = Decimal("99999999.99")  # DECIMAL(10, 2)
_IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,255}\Z")
_CENT = Decimal("0.01")

# The order lifecycle: each status and the statuses it may change to.
TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED}),
    OrderStatus.CONFIRMED: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.COMPLETED}),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}
_EVENT_TYPES = {
    OrderStatus.CONFIRMED: "order.confirmed",
    OrderStatus.SHIPPED: "order.shipped",
    OrderStatus.COMPLETED: "order.completed",
    OrderStatus.CANCELLED: "order.cancelled",
}


def _db() -> str:
    return router.db_for_write(Order)


# -- Placement ----------------------------------------------------------------


def _merged_lines(items: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Quantities per product, in the order first named; a product named on
    several lines is one line with the quantities summed.

    Raises InvalidInput naming each bad line (``items.<index>.<field>``, as the
    serializers name them).
    """
    if not items:
        raise InvalidInput({"items": ["An order needs at least one item."]})
    if len(items) > MAX_ORDER_LINES:
        raise InvalidInput({"items": [f"At most {MAX_ORDER_LINES} lines."]})
    errors: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    for index, (product_id, quantity) in enumerate(items):
        try:
            if not isinstance(product_id, str):
                raise ValidationError("A product id is a string.")
            product_id_validator(product_id)
        except ValidationError as exc:
            errors[f"items.{index}.product_id"] = list(exc.messages)
            continue
        if (
            isinstance(quantity, bool)
            or not isinstance(quantity, int)
            or not 1 <= quantity <= MAX_LINE_QUANTITY
        ):
            errors[f"items.{index}.quantity"] = [
                f"Must be a whole number from 1 to {MAX_LINE_QUANTITY}."
            ]
            continue
        lines[product_id] = lines.get(product_id, 0) + quantity
        if lines[product_id] > MAX_LINE_QUANTITY:
            errors[f"items.{index}.quantity"] = [
                f"With the earlier lines for {product_id} this makes "
                f"{lines[product_id]}; at most {MAX_LINE_QUANTITY} per product."
            ]
    if errors:
        raise InvalidInput(errors)
    return lines


def _fingerprint(items: Sequence[tuple[str, int]], payment_method: str) -> str:
    """sha256 of the canonical JSON of the request as parsed (ADR 0012)."""
    body = {
        "items": [{"product_id": p, "quantity": q} for p, q in items],
        "payment_method": payment_method,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replayed(*, user_id: UUID, key: str, fingerprint: str) -> Order | None:
    """The order first placed with ``key``, or None when the key is new.

    Raises IdempotencyKeyReused when the key came with another body.
    """
    record = (
        IdempotencyRecord.objects.filter(user_id=user_id, key=key)
        .select_related("order")
        .first()
    )
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return record.order


def _priced_items(lines: dict[str, int]) -> list[OrderItem]:
    """Order lines priced and named by the catalog, sorted by product id.

    Raises ProductsUnavailable (unknown or archived products) or, failing
    that, InsufficientStock (less stock now than requested).
    """
    products = get_products(lines)
    unavailable = [
        UnavailableProduct(product_id, "unknown")
        if product_id not in products
        else UnavailableProduct(product_id, "archived")
        for product_id in lines
        if product_id not in products or products[product_id].is_archived
    ]
    if unavailable:
        raise ProductsUnavailable(unavailable)
    short = [
        ShortItem(product_id, quantity, products[product_id].stock)
        for product_id, quantity in lines.items()
        if products[product_id].stock < quantity
    ]
    if short:
        raise InsufficientStock(short)
    return [
        OrderItem(
            product_id=product_id,
            product_name=products[product_id].name,
            category=products[product_id].category,
            quantity=quantity,
            price=products[product_id].price,
        )
        for product_id, quantity in sorted(lines.items())
    ]


def order_place(
    *,
    user_id: UUID,
    items: Sequence[tuple[str, int]],
    payment_method: str = "",
    idempotency_key: str | None = None,
) -> Order:
    """Place an order in PENDING, priced by the catalog.

    Writes the order, its items, its first history row, its ``order.created``
    event and (with ``idempotency_key``) the idempotency record in one
    transaction. With a key used before by this user with the same request,
    returns the order placed then and writes nothing.
    """
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidIdempotencyKey()
    lines = _merged_lines(items)
    fingerprint = _fingerprint(items, payment_method)
    if idempotency_key is not None:
        earlier = _replayed(
            user_id=user_id, key=idempotency_key, fingerprint=fingerprint
        )
        if earlier is not None:
            return earlier
    if not get_user(user_id).is_active:
        raise UserInactive("An inactive user cannot place orders.")
    order_items = _priced_items(lines)
    total = sum((i.price * i.quantity for i in order_items), Decimal(0))
    total = total.quantize(_CENT)
    if total > MAX_TOTAL:
        raise InvalidInput(
            {"items": [f"The order total {total} is over the limit of {MAX_TOTAL}."]}
        )
    order = Order(
        user_id=user_id,
        total_amount=total,
        payment_method=payment_method,
    )
    full_clean(order)
    for item in order_items:
        item.order = order
        full_clean(item, exclude=["order"])
    try:
        with transaction.atomic(using=_db()):
            order.save()
            OrderItem.objects.bulk_create(order_items)
            created = OrderStatusChange.objects.create(
                order=order,
                from_status=None,
                to_status=OrderStatus.PENDING,
                actor="customer",
            )
            # The order as placed, for the event and the answer, without
            # reading back what was just written; what commits next (the
            # saga, in-process on the embedded default) is not part of it.
            _as_prefetched(order, items=order_items, history=[created])
            order_event_record(order=order, event_type="order.created")
            if idempotency_key is not None:
                IdempotencyRecord.objects.create(
                    user_id=user_id,
                    key=idempotency_key,
                    fingerprint=fingerprint,
                    order=order,
                    response_status=201,
                    response_body=order_representation(order),
                )
    except IntegrityError:
        # A concurrent request with the same key committed first: everything
        # above rolled back; answer as a retry would be answered.
        if idempotency_key is not None:
            earlier = _replayed(
                user_id=user_id, key=idempotency_key, fingerprint=fingerprint
            )
            if earlier is not None:
                return earlier
        raise
    return order


def _as_prefetched(order: Order, **related: list) -> None:
    """Cache rows just written as ``order``'s prefetched relations, as
    ``prefetch_related`` itself fills them, so that reading them costs no
    query."""
    cache = getattr(order, "_prefetched_objects_cache", {})
    for name, rows in related.items():
        queryset = getattr(order, name).all()
        queryset._result_cache = list(rows)
        queryset._prefetch_done = True
        cache[name] = queryset
    order._prefetched_objects_cache = cache


# -- Lifecycle ----------------------------------------------------------------


def _order_transition(
    *, order_id: UUID, to_status: str, actor: str, reason: str = ""
) -> Order:
    """Apply one step of ``TRANSITIONS``: lock the order, check the table,
    write the status, the history row and the event, in one transaction.

    Raises OrderNotFound, or IllegalTransition naming the current status.
    """
    with transaction.atomic(using=_db()):
        try:
            order = Order.objects.select_for_update().get(pk=order_id)
        except Order.DoesNotExist:
            raise OrderNotFound(f"No order {order_id}.") from None
        previous = order.status
        if to_status not in TRANSITIONS[previous]:
            raise IllegalTransition(current_status=previous, requested_status=to_status)
        order.status = to_status
        if to_status == OrderStatus.CANCELLED:
            order.cancel_reason = reason
        change = OrderStatusChange(
            order=order,
            from_status=previous,
            to_status=to_status,
            reason=reason,
            actor=actor,
        )
        full_clean(order)
        full_clean(change, exclude=["order"])
        order.save(update_fields=["status", "cancel_reason", "updated_at"])
        change.save()
        order_event_record(
            order=order,
            event_type=_EVENT_TYPES[to_status],
            previous_status=previous,
            reason=reason,
        )
    return order


def order_confirm(*, order_id: UUID, actor: str = "system", reason: str = "") -> Order:
    """PENDING -> CONFIRMED (the saga, once payment succeeded)."""
    return _order_transition(
        order_id=order_id, to_status=OrderStatus.CONFIRMED, actor=actor, reason=reason
    )


def order_cancel(*, order_id: UUID, actor: str, reason: str = "") -> Order:
    """PENDING or CONFIRMED -> CANCELLED.

    A cancellation always tells the customer why: without a reason, who
    cancelled it is the reason.
    """
    if not reason.strip():
        reason = (
            "Cancelled at your request"
            if actor == "customer"
            else "Cancelled by the shop"
        )
    return _order_transition(
        order_id=order_id, to_status=OrderStatus.CANCELLED, actor=actor, reason=reason
    )


def order_ship(*, order_id: UUID, actor: str) -> Order:
    """CONFIRMED -> SHIPPED."""
    return _order_transition(
        order_id=order_id, to_status=OrderStatus.SHIPPED, actor=actor
    )


def order_complete(*, order_id: UUID, actor: str) -> Order:
    """SHIPPED -> COMPLETED."""
    return _order_transition(
        order_id=order_id, to_status=OrderStatus.COMPLETED, actor=actor
    )
