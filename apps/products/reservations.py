"""Stock reservations: reserve, release, commit, and the sweeper.

This is the part of the catalog the create-order saga drives (through
``interface.py``). Stock moves through conditional single-row updates, atomic
on every engine; the reservation record (unique per order reference, with the
items already taken) makes every call idempotent and lets the sweeper repair
a reservation interrupted half-way, where MongoDB has no transaction (ADR
0008).
"""

from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, NoReturn

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.errors import InvalidInput
from apps.products import db
from apps.products.errors import (
    InsufficientStock,
    ReservationConflict,
    ReservationNotFound,
    Shortage,
)
from apps.products.models import Product, ReservationStatus, StockReservation


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
    with db.atomic():
        try:
            with transaction.atomic(using=db.alias()):
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
        Shortage(
            product_id=line["product_id"],
            requested=line["quantity"],
            available=available.get(line["product_id"], 0),
        )
        for line in reservation.items
        if available.get(line["product_id"], 0) < line["quantity"]
    ]
    StockReservation.objects.filter(pk=reservation.pk).delete()
    raise InsufficientStock(shortages)


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
    with db.atomic():
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
    with db.atomic():
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
        with db.atomic():
            if _transition(
                reservation, ReservationStatus.PENDING, ReservationStatus.FAILED
            ):
                reservation.refresh_from_db(fields=["applied"])
                _give_back(reservation, only=reservation.applied)
                repaired += 1
    return repaired
