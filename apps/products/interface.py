"""The catalog's service interface: product look-ups and stock reservations.

Returns frozen DTOs. Every reservation call is idempotent per order
reference, so a saga step may safely repeat it.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from apps.gateway.interface import ContextBinding
from apps.products import reservations, selectors
from apps.products.errors import (
    InsufficientStock,
    ProductNotFound,
    ReservationConflict,
    ReservationNotFound,
    Shortage,
)
from apps.products.models import PRODUCT_ID_MAX_LENGTH, product_id_validator

__all__ = [
    "PRODUCT_ID_MAX_LENGTH",
    "product_id_validator",
    "StockLevel",
    "stock_levels",
    "InsufficientStock",
    "ProductDTO",
    "ProductNotFound",
    "ReservationConflict",
    "ReservationDTO",
    "ReservationItem",
    "ReservationNotFound",
    "ReservationStatusName",
    "Shortage",
    "commit_stock",
    "get_products",
    "release_stock",
    "reserve_stock",
    "return_stock",
]


@dataclass(frozen=True)
class ProductDTO:
    id: str
    name: str
    price: Decimal
    stock: int
    # Snapshotted on order lines, for sales by category.
    category: str
    is_archived: bool

    @classmethod
    def from_model(cls, product) -> "ProductDTO":
        return cls(
            id=product.id,
            name=product.name,
            price=product.price,
            stock=product.stock,
            category=product.category,
            is_archived=product.is_archived,
        )


@dataclass(frozen=True)
class ReservationItem:
    product_id: str
    quantity: int


# The reservation statuses (models.ReservationStatus; ADR 0013):
# pending: being made, item by item; releasing: released while being made,
# its stock comes back without another call; active: stock held for the
# order; committed: sold; released: held stock given back (cancel or
# expiry); failed: never completed, nothing held; returned: sold stock
# given back.
ReservationStatusName = Literal[
    "pending",
    "releasing",
    "active",
    "committed",
    "released",
    "failed",
    "returned",
]


@dataclass(frozen=True)
class ReservationDTO:
    order_ref: str
    status: ReservationStatusName
    items: tuple[ReservationItem, ...]
    expires_at: datetime

    @classmethod
    def from_model(cls, reservation) -> "ReservationDTO":
        return cls(
            order_ref=reservation.order_ref,
            status=reservation.status,
            items=tuple(
                ReservationItem(i["product_id"], i["quantity"])
                for i in reservation.items
            ),
            expires_at=reservation.expires_at,
        )


# Local or remote by settings.CONTEXTS["products"] (apps.gateway.bindings).
binding = ContextBinding(
    "products",
    errors=(
        InsufficientStock,
        ProductNotFound,
        ReservationConflict,
        ReservationNotFound,
    ),
)


@binding.expose(idempotent=True)
def get_products(product_ids: Iterable[str]) -> dict[str, ProductDTO]:
    """Look products up by id, for order lines and their snapshots.

    Args:
        product_ids: the ids wanted; unknown ones are left out.

    Returns:
        The products found, keyed by id, in the order of ``product_ids``
        (archived ones included: order history needs them).

    Raises:
        Nothing of its own.
    """
    return {
        p.id: ProductDTO.from_model(p)
        for p in selectors.products_in_order(list(product_ids))
    }


@binding.expose(idempotent=True)
def reserve_stock(
    *,
    order_ref: str,
    items: Iterable[ReservationItem],
    ttl_seconds: int | None = None,
) -> ReservationDTO:
    """Hold stock for an order: all items or none.

    Args:
        order_ref: the caller's idempotency key (the order id).
        items: products and quantities; repeated products are summed.
        ttl_seconds: how long the hold lasts before the sweeper releases it
            (default: settings.CATALOG_RESERVATION_TTL_SECONDS).

    Returns:
        The reservation, status "active" (or "committed" when it was
        already sold); the same call again returns the same reservation
        without taking stock twice.

    Raises:
        InsufficientStock: some items are short (unknown and archived
            products count as short), named in ``shortages``; nothing is
            held, and the same ``order_ref`` may try again later.
        ReservationConflict: ``order_ref`` was used with other items, or its
            reservation is in another status (still being made, released,
            returned); ``data["reservation_status"]`` names it.
        InvalidInput: no items, an empty product id or a quantity below 1.
    """
    return ReservationDTO.from_model(
        reservations.stock_reserve(
            order_ref=order_ref,
            items=[(i.product_id, i.quantity) for i in items],
            ttl_seconds=ttl_seconds,
        )
    )


@binding.expose(idempotent=True)
def release_stock(*, order_ref: str) -> ReservationDTO | None:
    """Give back the stock held for ``order_ref`` (a saga compensation).

    Idempotent: releasing twice, or releasing a reference that holds
    nothing (never reserved, or failed), is not an error. A reservation
    still being made is marked "releasing": its maker (or, if the maker
    died, the sweeper) gives every item back, with no further call.

    Args:
        order_ref: the order reference given to ``reserve_stock``.

    Returns:
        The reservation ("released", "releasing" or "failed"), or None when
        nothing was ever reserved for ``order_ref``.

    Raises:
        ReservationConflict: the reservation was sold ("committed" or
            "returned"); ``return_stock`` gives sold stock back.
    """
    reservation = reservations.stock_release(order_ref=order_ref)
    return ReservationDTO.from_model(reservation) if reservation else None


@binding.expose(idempotent=True)
def commit_stock(*, order_ref: str) -> ReservationDTO:
    """Turn the held stock into a sale (and count it as sold). Idempotent.

    Args:
        order_ref: the order reference given to ``reserve_stock``.

    Returns:
        The reservation, status "committed".

    Raises:
        ReservationNotFound: nothing was reserved for ``order_ref``.
        ReservationConflict: the reservation is not held: still being made
            (retry later), released, expired, failed or returned;
            ``data["reservation_status"]`` names its status.
    """
    return ReservationDTO.from_model(reservations.stock_commit(order_ref=order_ref))


@binding.expose(idempotent=True)
def return_stock(*, order_ref: str) -> ReservationDTO | None:
    """Give back the stock of a sale: a confirmed order cancelled (refunded)
    before shipping. Idempotent: a second call changes nothing.

    The units go back in stock and off the product's sold count; nothing
    else changes.

    Args:
        order_ref: the order reference given to ``reserve_stock``.

    Returns:
        The reservation, status "returned", or None when nothing was ever
        reserved for ``order_ref``.

    Raises:
        ReservationConflict: the reservation was never sold (still being
            made, active, released or failed: ``release_stock`` is the call
            for held stock); ``data["reservation_status"]`` names it.
    """
    reservation = reservations.stock_return(order_ref=order_ref)
    return ReservationDTO.from_model(reservation) if reservation else None


@dataclass(frozen=True)
class StockLevel:
    """Units of one product: available to sell, held by open reservations,
    and sold."""

    available: int
    held: int
    sold: int


@binding.expose(idempotent=True)
def stock_levels(product_ids: Iterable[str]) -> dict[str, StockLevel]:
    """Return the stock levels of the products among ``product_ids`` that
    exist, keyed by id; available + held + sold stays constant under
    reservations, releases, sales and returns (operators' check).

    Args:
        product_ids: the products to look at.

    Returns:
        A StockLevel per existing product.

    Raises:
        Nothing: unknown ids are left out.
    """
    return {
        product_id: StockLevel(*levels)
        for product_id, levels in reservations.stock_levels(product_ids).items()
    }
