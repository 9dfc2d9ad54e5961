"""The orders context's domain errors: a stable code, a status, typed data.

``interface.py`` re-exports the ones other contexts may catch.
"""

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Literal

from apps.core.errors import Conflict, DomainError, NotFound, PermissionDenied


class OrderNotFound(NotFound):
    """No such order, or one the caller may not see (a customer's view of
    another customer's order is the same answer)."""

    code = "order_not_found"
    title = "Order not found"


class IllegalTransition(Conflict):
    """The order's current status does not allow the requested change."""

    code = "illegal_transition"
    title = "Illegal status change"

    def __init__(self, *, current_status: str, requested_status: str):
        self.current_status = current_status
        self.requested_status = requested_status
        super().__init__(
            f"The order is {current_status}; it cannot become {requested_status}.",
            current_status=current_status,
            requested_status=requested_status,
        )


class InvalidIdempotencyKey(DomainError):
    code = "invalid_idempotency_key"
    title = "Invalid Idempotency-Key"

    def __init__(self):
        super().__init__(
            "Idempotency-Key must be 1 to 255 printable ASCII characters.",
            header="Idempotency-Key",
        )


class IdempotencyKeyReused(Conflict):
    """The key was used before by the same user with another request body."""

    code = "idempotency_key_reused"
    title = "Idempotency-Key reused"

    def __init__(self):
        super().__init__(
            "This Idempotency-Key was already used with a different request "
            "body; use a new key for a new order.",
            header="Idempotency-Key",
        )


class UserInactive(PermissionDenied):
    code = "user_inactive"
    title = "User inactive"


@dataclass(frozen=True)
class UnavailableProduct:
    product_id: str
    reason: Literal["unknown", "archived"]


class ProductsUnavailable(Conflict):
    """Some products of the order are unknown to the catalog or archived;
    ``products`` names every one of them."""

    code = "products_unavailable"
    title = "Products unavailable"

    def __init__(self, products: Iterable[UnavailableProduct]):
        self.products = tuple(products)
        names = ", ".join(f"{p.product_id} ({p.reason})" for p in self.products)
        super().__init__(
            f"These products cannot be ordered: {names}.",
            products=[asdict(p) for p in self.products],
        )

    @classmethod
    def from_remote(cls, detail, data) -> "ProductsUnavailable":
        return cls([UnavailableProduct(**p) for p in data.get("products", [])])


@dataclass(frozen=True)
class ShortItem:
    product_id: str
    requested: int
    available: int


class InsufficientStock(Conflict):
    """Some items are short at order time; ``items`` names every one."""

    code = "insufficient_stock"
    title = "Insufficient stock"

    def __init__(self, items: Iterable[ShortItem]):
        self.items = tuple(items)
        names = ", ".join(
            f"{i.product_id} ({i.requested} requested, {i.available} available)"
            for i in self.items
        )
        super().__init__(
            f"Not enough stock for: {names}.",
            items=[asdict(i) for i in self.items],
        )

    @classmethod
    def from_remote(cls, detail, data) -> "InsufficientStock":
        return cls([ShortItem(**item) for item in data.get("items", [])])
