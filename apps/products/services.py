"""Catalog writes: products, operator stock adjustments, reservations.

Stock only ever moves through conditional single-row updates
(``filter(stock__gte=n).update(stock=F("stock") - n)``), which are atomic on
every engine, MongoDB included. On SQL engines a transaction around each use
case is extra safety; on MongoDB it is a no-op, and the reservation record
(with the list of items already applied) lets the sweeper repair a
reservation interrupted half-way.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, NoReturn

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, router, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import InvalidInput
from apps.products.errors import (
    InsufficientStock,
    ProductChanged,
    ProductConflict,
    ProductNotFound,
    ReservationConflict,
    ReservationNotFound,
)
from apps.products.models import (
    Product,
    ReservationStatus,
    StockAdjustment,
    StockReservation,
)
from apps.products.selectors import json_list_contains

# Stock fits PostgreSQL's integer column with room to spare.
MAX_STOCK = 1_000_000_000

PRODUCT_FIELDS = (
    "name",
    "description",
    "price",
    "stock",
    "category",
    "tags",
    "images",
    "attributes",
)


def _db() -> str:
    return router.db_for_write(Product)


def _atomic():
    return transaction.atomic(using=_db())


def _clean(product: Product) -> None:
    try:
        product.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise InvalidInput(exc.message_dict) from None


def _normalise(fields: dict[str, Any]) -> dict[str, Any]:
    if "tags" in fields:
        # Tags are matched exactly; one spelling each.
        fields["tags"] = sorted({t.strip().lower() for t in fields["tags"]})
    return fields


# -- products ----------------------------------------------------------------


def product_create(*, actor_id: str = "", actor_email: str = "", **fields) -> Product:
    fields = _normalise(fields)
    product = Product(**fields)
    _clean(product)
    with _atomic():
        try:
            product.save(force_insert=True)
        except IntegrityError:
            raise ProductConflict(f"A product with id {product.pk} exists.") from None
        if product.stock:
            _record_adjustment(
                product, product.stock, "initial stock", actor_id, actor_email
            )
    return product


def product_update(
    *,
    product_id: str,
    expected_version: int | None,
    changes: dict[str, Any],
    actor_id: str = "",
    actor_email: str = "",
) -> Product:
    """Apply ``changes``; fails with 412 if the product changed meanwhile.

    ``expected_version`` comes from the caller's If-Match; without one, the
    version read here guards the write, so no concurrent write is lost.
    """
    changes = _normalise(dict(changes))
    with _atomic():
        product = _get(product_id)
        if expected_version is not None and product.version != expected_version:
            raise ProductChanged("The product changed since you read it.")
        old_stock = product.stock
        for name, value in changes.items():
            setattr(product, name, value)
        _clean(product)
        now = timezone.now()
        written = Product.objects.filter(pk=product.pk, version=product.version).update(
            **{name: getattr(product, name) for name in PRODUCT_FIELDS},
            version=F("version") + 1,
            updated_at=now,
        )
        if not written:
            raise ProductChanged("The product changed while it was being updated.")
        if product.stock != old_stock:
            _record_adjustment(
                product,
                product.stock - old_stock,
                "set through the API",
                actor_id,
                actor_email,
            )
    # What was written, without reading it back.
    product.version += 1
    product.updated_at = now
    return product


def product_set_archived(*, product_id: str, archived: bool) -> Product:
    with _atomic():
        if not Product.objects.filter(pk=product_id).update(
            is_archived=archived, version=F("version") + 1, updated_at=timezone.now()
        ):
            raise ProductNotFound(f"No product with id {product_id}.")
    return _get(product_id)


def product_delete(*, product_id: str, expected_version: int | None = None) -> None:
    """Delete a product that no open reservation holds (else 409)."""
    with _atomic():
        product = _get(product_id)
        if expected_version is not None and product.version != expected_version:
            raise ProductChanged("The product changed since you read it.")
        open_reservations = json_list_contains(
            StockReservation.objects.filter(
                status__in=[ReservationStatus.PENDING, ReservationStatus.ACTIVE]
            ),
            "product_ids",
            product_id,
        )
        if open_reservations.exists():
            raise ProductConflict(
                "The product has open reservations; archive it instead.",
                reason="open_reservations",
            )
        deleted, _ = Product.objects.filter(
            pk=product_id, version=product.version
        ).delete()
        if not deleted:
            # Stock moved (a reservation, say) between the check and now.
            raise ProductConflict("The product changed while it was being deleted.")


def _get(product_id: str) -> Product:
    try:
        return Product.objects.get(pk=product_id)
    except Product.DoesNotExist:
        raise ProductNotFound(f"No product with id {product_id}.") from None


# -- operator stock adjustments ---------------------------------------------


def stock_adjust(
    *,
    product_id: str,
    delta: int,
    reason: str,
    actor_id: str = "",
    actor_email: str = "",
) -> StockAdjustment:
    """Add (or remove, negative) units, recording who, when and why."""
    if not reason.strip():
        raise InvalidInput({"reason": ["A reason is required."]})
    if delta == 0:
        raise InvalidInput({"delta": ["Must not be zero."]})
    with _atomic():
        product = _get(product_id)
        updated = Product.objects.filter(
            pk=product_id,
            stock__gte=max(-delta, 0),
            stock__lte=MAX_STOCK - max(delta, 0),
        )
        if not updated.update(stock=F("stock") + delta, version=F("version") + 1):
            product.refresh_from_db(fields=["stock"])
            raise InvalidInput(
                {
                    "delta": [
                        f"{product.stock} in stock: the result must be from 0 "
                        f"to {MAX_STOCK}."
                    ]
                }
            )
        product.refresh_from_db(fields=["stock"])
        return _record_adjustment(product, delta, reason, actor_id, actor_email)


def _record_adjustment(product, delta, reason, actor_id, actor_email):
    return StockAdjustment.objects.create(
        product_id=product.pk,
        delta=delta,
        stock_after=product.stock,
        reason=reason,
        actor_id=str(actor_id or ""),
        actor_email=actor_email or "",
    )


# -- reservations --------------------------------------------------------------


def _merge_items(items: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    totals: Counter[str] = Counter()
    for product_id, quantity in items:
        if not isinstance(product_id, str) or not product_id:
            raise InvalidInput({"items": ["Every item needs a product id."]})
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            raise InvalidInput({"items": ["Quantities are whole numbers from 1."]})
        totals[product_id] += quantity
    if not totals:
        raise InvalidInput({"items": ["At least one item is required."]})
    return [{"product_id": p, "quantity": q} for p, q in sorted(totals.items())]


def stock_reserve(
    *, order_ref: str, items: Iterable[tuple[str, int]], ttl_seconds: int | None = None
) -> StockReservation:
    lines = _merge_items(items)
    ttl = ttl_seconds or settings.CATALOG_RESERVATION_TTL_SECONDS
    with _atomic():
        try:
            with transaction.atomic(using=_db()):
                reservation = StockReservation.objects.create(
                    order_ref=order_ref,
                    items=lines,
                    product_ids=[line["product_id"] for line in lines],
                    expires_at=timezone.now() + timedelta(seconds=ttl),
                )
        except IntegrityError:
            return _existing_reservation(order_ref, lines)
        return _apply(reservation)


def _existing_reservation(order_ref: str, lines) -> StockReservation:
    reservation = StockReservation.objects.get(order_ref=order_ref)
    if reservation.items != lines:
        raise ReservationConflict(
            f"Order reference {order_ref} was reserved with other items."
        )
    if reservation.status not in (
        ReservationStatus.ACTIVE,
        ReservationStatus.COMMITTED,
    ):
        # PENDING: another call for this reference is still taking stock.
        raise ReservationConflict(
            f"The reservation for {order_ref} is {reservation.status}."
        )
    return reservation


def _apply(reservation: StockReservation) -> StockReservation:
    """Take stock item by item (in product-id order, so concurrent
    reservations never wait on each other in a cycle); undo on a shortage."""
    for line in reservation.items:
        taken = Product.objects.filter(
            pk=line["product_id"], is_archived=False, stock__gte=line["quantity"]
        ).update(stock=F("stock") - line["quantity"], version=F("version") + 1)
        if not taken:
            return _fail(reservation)
        reservation.applied.append(line["product_id"])
        StockReservation.objects.filter(pk=reservation.pk).update(
            applied=reservation.applied
        )
    if not _transition(
        reservation, ReservationStatus.PENDING, ReservationStatus.ACTIVE
    ):
        # The sweeper judged this reservation interrupted and gave its
        # stock back meanwhile.
        raise ReservationConflict(
            f"The reservation for {reservation.order_ref} was interrupted."
        )
    reservation.status = ReservationStatus.ACTIVE
    return reservation


def _fail(reservation: StockReservation) -> NoReturn:
    """Give back what was taken, forget the attempt and name every short item.

    The record is deleted, so the same order reference may try again once
    stock is back (the same outcome on every engine, with or without a
    transaction).
    """
    # FAILED before giving back, so that a crash in between leaves nothing
    # for the sweeper to give back a second time.
    if _transition(reservation, ReservationStatus.PENDING, ReservationStatus.FAILED):
        _give_back(reservation, only=reservation.applied)
    available = {
        p.pk: (0 if p.is_archived else p.stock)
        for p in Product.objects.filter(pk__in=reservation.product_ids).only(
            "pk", "stock", "is_archived"
        )
    }
    shortages = [
        {
            "product_id": line["product_id"],
            "requested": line["quantity"],
            "available": available.get(line["product_id"], 0),
        }
        for line in reservation.items
        if available.get(line["product_id"], 0) < line["quantity"]
    ]
    StockReservation.objects.filter(pk=reservation.pk).delete()
    raise InsufficientStock("Some items are short.", items=shortages)


def _give_back(reservation: StockReservation, *, only=None) -> None:
    wanted = set(reservation.product_ids if only is None else only)
    for line in reservation.items:
        if line["product_id"] in wanted:
            Product.objects.filter(pk=line["product_id"]).update(
                stock=F("stock") + line["quantity"], version=F("version") + 1
            )


def _transition(reservation, from_status, to_status) -> bool:
    """Compare-and-set on the status: only one caller wins a transition."""
    return bool(
        StockReservation.objects.filter(pk=reservation.pk, status=from_status).update(
            status=to_status, updated_at=timezone.now()
        )
    )


def stock_release(*, order_ref: str) -> StockReservation | None:
    with _atomic():
        reservation = StockReservation.objects.filter(order_ref=order_ref).first()
        if reservation is None:
            return None
        if reservation.status == ReservationStatus.COMMITTED:
            raise ReservationConflict(f"The reservation for {order_ref} was sold.")
        if reservation.status == ReservationStatus.ACTIVE and _transition(
            reservation, ReservationStatus.ACTIVE, ReservationStatus.RELEASED
        ):
            _give_back(reservation)
        reservation.refresh_from_db()
        return reservation


def stock_commit(*, order_ref: str) -> StockReservation:
    with _atomic():
        reservation = StockReservation.objects.filter(order_ref=order_ref).first()
        if reservation is None:
            raise ReservationNotFound(f"Nothing is reserved for {order_ref}.")
        if reservation.status == ReservationStatus.ACTIVE and _transition(
            reservation, ReservationStatus.ACTIVE, ReservationStatus.COMMITTED
        ):
            for line in reservation.items:
                Product.objects.filter(pk=line["product_id"]).update(
                    sold_count=F("sold_count") + line["quantity"],
                    version=F("version") + 1,
                )
        reservation.refresh_from_db()
        if reservation.status != ReservationStatus.COMMITTED:
            raise ReservationConflict(
                f"The reservation for {order_ref} is {reservation.status}."
            )
        return reservation


def reservations_release_expired(*, now=None) -> int:
    """Release every active reservation past its expiry; return how many."""
    now = now or timezone.now()
    released = 0
    due = StockReservation.objects.filter(
        status=ReservationStatus.ACTIVE, expires_at__lte=now
    ).values_list("order_ref", flat=True)
    for order_ref in list(due[:1000]):
        try:
            reservation = stock_release(order_ref=order_ref)
        except ReservationConflict:
            continue  # committed meanwhile: a sale, nothing to release
        if reservation is not None and reservation.status == ReservationStatus.RELEASED:
            released += 1
    return released


def reservations_repair_interrupted(*, older_than: timedelta, now=None) -> int:
    """Undo reservations left PENDING by a crash mid-way; return how many."""
    cutoff = (now or timezone.now()) - older_than
    repaired = 0
    stuck = StockReservation.objects.filter(
        status=ReservationStatus.PENDING, updated_at__lte=cutoff
    )
    for reservation in list(stuck[:1000]):
        with _atomic():
            if _transition(
                reservation, ReservationStatus.PENDING, ReservationStatus.FAILED
            ):
                reservation.refresh_from_db(fields=["applied"])
                _give_back(reservation, only=reservation.applied)
                repaired += 1
    return repaired
