"""Catalog writes: products and operator stock adjustments.

Reservations (reserve, release, commit, return, the sweeper) are in
``reservations.py``. Stock only ever moves through conditional single-row
updates (``filter(stock__gte=n).update(stock=F("stock") - n)``), which are
atomic on every engine, MongoDB included.
"""

from collections.abc import Collection
from typing import Any

from django.db import IntegrityError
from django.db.models import F

from apps.core.errors import InvalidInput
from apps.core.validation import full_clean
from apps.products import db
from apps.products.errors import ProductChanged, ProductConflict, ProductNotFound
from apps.products.models import (
    MAX_STOCK,
    Product,
    StockAdjustment,
    StockReservation,
)
from apps.products.reservations import HOLDING
from apps.products.selectors import json_list_contains

# The revisions a caller's If-Match names (Product.revision), or None: the
# write goes ahead only if the product is at one of them.
Revisions = Collection[str] | None

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


def _normalise(fields: dict[str, Any]) -> dict[str, Any]:
    tags = fields.get("tags")
    # Tags are matched exactly: one spelling each. Anything but a list of
    # text is left for full_clean to refuse.
    if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
        fields["tags"] = sorted({tag.strip().lower() for tag in tags})
    return fields


# -- products ----------------------------------------------------------------


def product_create(*, actor_id: str = "", actor_email: str = "", **fields) -> Product:
    fields = _normalise(fields)
    product = Product(**fields)
    full_clean(product)
    with db.atomic():
        try:
            product.save(force_insert=True)
        except IntegrityError:
            raise ProductConflict(f"A product with id {product.pk} exists.") from None
        if product.stock:
            _record_adjustment(
                product, product.stock, "initial stock", actor_id, actor_email
            )
        # Nothing is cached for a missing id; a deleted one was forgotten.
        db.changed(product.pk)
    return product


def product_update(
    *,
    product_id: str,
    expected_revisions: Revisions,
    changes: dict[str, Any],
    actor_id: str = "",
    actor_email: str = "",
) -> Product:
    """Apply ``changes``; fails with 412 if the product changed meanwhile.

    ``expected_revisions`` come from the caller's If-Match. Without one,
    the version read here guards the write: a write that lands between
    this read and this write makes this one fail (412, nothing changed)
    instead of being silently overwritten.
    """
    changes = _normalise(dict(changes))
    with db.atomic():
        product = _get(product_id)
        _check_revision(product, expected_revisions)
        old_stock = product.stock
        for name, value in changes.items():
            setattr(product, name, value)
        full_clean(product)
        with db.touched(product.pk) as touched:
            written = Product.objects.filter(
                pk=product.pk, version=product.version
            ).update(
                **{name: getattr(product, name) for name in PRODUCT_FIELDS}, **touched
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
    product.updated_at = touched["updated_at"]
    return product


def product_set_archived(
    *, product_id: str, archived: bool, expected_revisions: Revisions = None
) -> Product:
    with db.atomic():
        product = _get(product_id)
        _check_revision(product, expected_revisions)
        with db.touched(product_id) as touched:
            written = Product.objects.filter(
                pk=product_id, version=product.version
            ).update(is_archived=archived, **touched)
        if not written:
            raise ProductChanged("The product changed while it was being archived.")
    return _get(product_id)


def product_delete(*, product_id: str, expected_revisions: Revisions = None) -> None:
    """Delete a product that no open reservation holds (else 409)."""
    with db.atomic():
        product = _get(product_id)
        _check_revision(product, expected_revisions)
        open_reservations = json_list_contains(
            StockReservation.objects.filter(status__in=HOLDING),
            "product_ids",
            product_id,
        )
        if open_reservations.exists():
            raise ProductConflict(
                "The product has open reservations; archive it instead.",
                reason="open_reservations",
            )
        with db.touched(product_id):
            deleted, _ = Product.objects.filter(
                pk=product_id, version=product.version, incarnation=product.incarnation
            ).delete()
        if not deleted:
            # Stock moved (a reservation, say) between the check and now.
            raise ProductConflict("The product changed while it was being deleted.")


def _check_revision(product: Product, expected_revisions: Revisions) -> None:
    if expected_revisions is not None and product.revision not in expected_revisions:
        raise ProductChanged("The product changed since you read it.")


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
    expected_revisions: Revisions = None,
    actor_id: str = "",
    actor_email: str = "",
) -> StockAdjustment:
    """Add (or remove, negative) units, recording who, when and why.

    The stock stays from 0 to MAX_STOCK. With ``expected_revisions`` (an
    If-Match) the product must be at one of them, else 412.
    """
    if not reason.strip():
        raise InvalidInput({"reason": ["A reason is required."]})
    if delta == 0:
        raise InvalidInput({"delta": ["Must not be zero."]})
    full_clean(
        StockAdjustment(product_id=product_id, delta=delta, reason=reason),
        exclude=["product", "stock_after"],
    )
    with db.atomic():
        product = _get(product_id)
        _check_revision(product, expected_revisions)
        updated = Product.objects.filter(
            pk=product_id,
            stock__gte=max(-delta, 0),
            stock__lte=MAX_STOCK - max(delta, 0),
        )
        if expected_revisions is not None:
            updated = updated.filter(version=product.version)
        with db.touched(product_id) as touched:
            written = updated.update(stock=F("stock") + delta, **touched)
        if not written:
            product.refresh_from_db(fields=["stock", "version"])
            _check_revision(product, expected_revisions)
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
