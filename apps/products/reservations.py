"""Stock reservations: reserve, release, commit, return, and the sweeper.

This is the part of the catalog the create-order saga drives (through
``interface.py``). Stock moves through conditional single-row updates, atomic
on every engine; the reservation record (unique per order reference, with the
items already taken) makes every call idempotent and lets the sweeper repair
a reservation interrupted half-way, where MongoDB has no transaction (ADR
0008). Every status change goes through ``transition`` and the table
``TRANSITIONS`` (ADR 0013).
"""

from collections import Counter
from collections.abc import Iterable, Mapping
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

S = ReservationStatus

# -- the state machine ---------------------------------------------------------

# Each status and the statuses a reservation in it may move to.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.ACTIVE, S.FAILED, S.RELEASING}),
    S.RELEASING: frozenset({S.RELEASED}),
    S.ACTIVE: frozenset({S.COMMITTED, S.RELEASED}),
    S.COMMITTED: frozenset({S.RETURNED}),
    S.RELEASED: frozenset(),
    S.FAILED: frozenset(),
    S.RETURNED: frozenset(),
}

# Statuses in which a reservation may hold stock.
HOLDING = (S.PENDING, S.RELEASING, S.ACTIVE)

# What each use case does in each status: the status to move to, or None
# when there is nothing to do (the call is idempotent there). A status left
# out is a ReservationConflict that names it.
ON_RELEASE: dict[str, str | None] = {
    # Being made: the maker gives the stock back when it sees the mark (or
    # the sweeper does, if the maker died), so stock is never held until the
    # expiry and never given back twice.
    S.PENDING: S.RELEASING,
    S.ACTIVE: S.RELEASED,  # the release gives the stock back
    S.RELEASING: None,
    S.RELEASED: None,
    S.FAILED: None,  # nothing held
    # COMMITTED, RETURNED: sold; giving sold stock back is a return.
}
ON_COMMIT: dict[str, str | None] = {
    S.ACTIVE: S.COMMITTED,
    S.COMMITTED: None,
    # PENDING: not made yet (the caller may retry); the rest hold nothing.
}
ON_RETURN: dict[str, str | None] = {
    S.COMMITTED: S.RETURNED,
    S.RETURNED: None,
    # The rest were never sold: a release is the call for held stock.
}
# The maker stops (a shortage, or released meanwhile), or the sweeper
# repairs a reservation whose maker died: whoever makes the move gives back
# the items recorded as taken.
ON_ABANDON: dict[str, str | None] = {
    S.PENDING: S.FAILED,
    S.RELEASING: S.RELEASED,
    S.FAILED: None,  # the sweeper gave the stock back
    S.RELEASED: None,
}
# Reserving an order reference again returns the reservation in these.
REUSABLE = (S.ACTIVE, S.COMMITTED)


def transition(reservation: StockReservation, to: str) -> bool:
    """Move ``reservation`` from the status it was read in to ``to``, by
    compare-and-set on the status (one atomic update on every engine), so
    that only one caller makes any move.

    Returns True when this call made the move; False when the status had
    changed meanwhile, with ``reservation.status`` and ``applied`` re-read.
    Raises ReservationConflict, naming the current status, when the table
    does not allow the move.
    """
    current = reservation.status
    if to not in TRANSITIONS[current]:
        raise _conflict(reservation, f"is {current}; it cannot become {to}")
    moved = StockReservation.objects.filter(pk=reservation.pk, status=current).update(
        status=to, updated_at=timezone.now()
    )
    if moved:
        reservation.status = to
        return True
    fresh = (
        StockReservation.objects.filter(pk=reservation.pk)
        .values("status", "applied")
        .first()
    )
    # A record is deleted only after its reservation failed (a shortage).
    fresh = fresh or {"status": S.FAILED, "applied": []}
    reservation.status, reservation.applied = fresh["status"], fresh["applied"]
    return False


def _follow(reservation: StockReservation, rules: Mapping[str, str | None]) -> bool:
    """Apply a use case's rule for the reservation's current status; after
    a lost race, decide again on the fresh status (statuses only move
    forward, so this ends). Returns True when this call made a move."""
    while True:
        if reservation.status not in rules:
            raise _conflict(reservation, f"is {reservation.status}")
        target = rules[reservation.status]
        if target is None:
            return False
        if transition(reservation, target):
            return True


def _conflict(reservation: StockReservation, what: str) -> ReservationConflict:
    return ReservationConflict(
        f"The reservation for {reservation.order_ref} {what}.",
        reservation_status=str(reservation.status),
    )


# -- use cases -----------------------------------------------------------------


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
    # The record is saved on its own, before any stock moves, and the
    # stock is taken outside a transaction on every engine: a release
    # made meanwhile must see the PENDING record (an enclosing transaction
    # would hide it until the end, and roll back the give-backs of a
    # maker that stops on an error).
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
    return _make(reservation)


def _existing_reservation(order_ref: str, lines) -> StockReservation:
    reservation = StockReservation.objects.get(order_ref=order_ref)
    if reservation.items != lines:
        raise ReservationConflict(
            f"Order reference {order_ref} was reserved with other items."
        )
    if reservation.status not in REUSABLE:
        # PENDING: another call for this reference is still taking stock.
        raise _conflict(reservation, f"is {reservation.status}")
    return reservation


def _make(reservation: StockReservation) -> StockReservation:
    """Take stock item by item (in product-id order, so concurrent
    reservations never wait on each other in a cycle); undo on a shortage
    or when the reservation is released (or repaired) meanwhile."""
    for line in reservation.items:
        if not _take(line):
            _abandon(reservation)
            _short(reservation)
        reservation.applied.append(line["product_id"])
        # Recorded only while still PENDING, so that whoever moves the
        # reservation on reads every item taken before the move.
        recorded = StockReservation.objects.filter(
            pk=reservation.pk, status=S.PENDING
        ).update(applied=reservation.applied, updated_at=timezone.now())
        if not recorded:
            # Released, or judged interrupted by the sweeper: this item is
            # not on the record, so it is given back here.
            reservation.applied.pop()
            _give_back_line(line)
            break
    else:
        if transition(reservation, S.ACTIVE):
            return reservation
    _abandon(reservation)
    raise _conflict(reservation, f"was {reservation.status} while being made")


def _take(line: dict[str, Any]) -> bool:
    with db.touched(line["product_id"]) as touched:
        return bool(
            Product.objects.filter(
                pk=line["product_id"], is_archived=False, stock__gte=line["quantity"]
            ).update(stock=F("stock") - line["quantity"], **touched)
        )


def _abandon(reservation: StockReservation) -> bool:
    """Stop making ``reservation``; the caller that moves it out of
    PENDING or RELEASING gives back the items recorded as taken. Returns
    True when this call did.

    The status moves before the stock comes back, so that a crash in
    between leaves nothing for anyone to give back a second time.
    """
    if not _follow(reservation, ON_ABANDON):
        return False
    reservation.refresh_from_db(fields=["applied"])
    _give_back(reservation, only=reservation.applied)
    return True


def _short(reservation: StockReservation) -> NoReturn:
    """Name every short item; forget a failed attempt, so that the same
    order reference may try again once stock is back (the same outcome on
    every engine, with or without a transaction)."""
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
    if reservation.status == S.FAILED:
        StockReservation.objects.filter(pk=reservation.pk).delete()
    raise InsufficientStock(shortages)


def _give_back_line(line: dict[str, Any], *, unsold: bool = False) -> None:
    """Put a line's quantity back in stock; ``unsold``: off the sold count
    too (never below zero)."""
    product = Product.objects.filter(pk=line["product_id"])
    with db.touched(line["product_id"]) as touched:
        back = {"stock": F("stock") + line["quantity"], **touched}
        if unsold and product.filter(sold_count__gte=line["quantity"]).update(
            sold_count=F("sold_count") - line["quantity"], **back
        ):
            return
        product.update(**back)


def _give_back(reservation: StockReservation, *, only=None) -> None:
    wanted = set(reservation.product_ids if only is None else only)
    for line in reservation.items:
        if line["product_id"] in wanted:
            _give_back_line(line)


def stock_release(*, order_ref: str) -> StockReservation | None:
    with db.atomic():
        reservation = StockReservation.objects.filter(order_ref=order_ref).first()
        if reservation is None:
            return None
        if _follow(reservation, ON_RELEASE) and reservation.status == S.RELEASED:
            _give_back(reservation)
        return reservation


def stock_commit(*, order_ref: str) -> StockReservation:
    with db.atomic():
        reservation = StockReservation.objects.filter(order_ref=order_ref).first()
        if reservation is None:
            raise ReservationNotFound(f"Nothing is reserved for {order_ref}.")
        if _follow(reservation, ON_COMMIT):
            # Best-selling counts move with the sale, not with an event.
            for line in reservation.items:
                with db.touched(line["product_id"]) as touched:
                    Product.objects.filter(pk=line["product_id"]).update(
                        sold_count=F("sold_count") + line["quantity"], **touched
                    )
        return reservation


def stock_return(*, order_ref: str) -> StockReservation | None:
    """Give back the stock of a sale (an order cancelled after it was
    confirmed, before shipping), and take it off the best-selling counts."""
    with db.atomic():
        reservation = StockReservation.objects.filter(order_ref=order_ref).first()
        if reservation is None:
            return None
        if _follow(reservation, ON_RETURN):
            for line in reservation.items:
                _give_back_line(line, unsold=True)
        return reservation


def stock_levels(product_ids: Iterable[str]) -> dict[str, tuple[int, int, int]]:
    """(available, held, sold) units of each product that exists.

    Held counts what open reservations have taken: every item of an active
    one, the items applied so far of one being made or released. For an
    operator's check that stock is conserved (``saga_chaos``).
    """
    wanted = set(product_ids)
    held: Counter[str] = Counter()
    for reservation in StockReservation.objects.filter(status__in=HOLDING):
        taken = None if reservation.status == S.ACTIVE else set(reservation.applied)
        for line in reservation.items:
            product_id = line["product_id"]
            if product_id in wanted and (taken is None or product_id in taken):
                held[product_id] += line["quantity"]
    return {
        product.pk: (product.stock, held[product.pk], product.sold_count)
        for product in Product.objects.filter(pk__in=wanted).only(
            "pk", "stock", "sold_count"
        )
    }


# -- the sweeper ---------------------------------------------------------------


def reservations_release_expired(*, now=None) -> int:
    """Release every active reservation past its expiry; return how many."""
    now = now or timezone.now()
    released = 0
    due = StockReservation.objects.filter(
        status=S.ACTIVE, expires_at__lte=now
    ).values_list("order_ref", flat=True)
    for order_ref in list(due[:1000]):
        try:
            reservation = stock_release(order_ref=order_ref)
        except ReservationConflict:
            continue  # committed meanwhile: a sale, nothing to release
        if reservation is not None and reservation.status == S.RELEASED:
            released += 1
    return released


def reservations_repair_interrupted(*, older_than: timedelta, now=None) -> int:
    """Finish reservations whose maker stopped mid-way (a crash) with no
    progress for ``older_than``: give back what they took. Return how many."""
    cutoff = (now or timezone.now()) - older_than
    repaired = 0
    stuck = StockReservation.objects.filter(
        status__in=[S.PENDING, S.RELEASING], updated_at__lte=cutoff
    )
    for reservation in list(stuck[:1000]):
        with db.atomic():
            try:
                repaired += _abandon(reservation)
            except ReservationConflict:
                continue  # made meanwhile: nothing to repair
    return repaired
