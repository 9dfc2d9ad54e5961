"""Catalog persistence. Fields work on PostgreSQL, SQLite and MongoDB.

String or UUID primary keys only (django-mongodb-backend has no AutoField),
JSONField for lists and free-form attributes, no foreign keys.
"""

import math
import re
import secrets
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from apps.products.messaging_models import InboxEntry  # noqa: F401


def new_product_id() -> str:
    return uuid.uuid4().hex


def new_incarnation() -> str:
    return secrets.token_hex(8)


# Text that cannot be stored: PostgreSQL refuses NUL in text and jsonb, and
# a lone surrogate (JSON's "\ud800") is no Unicode text at all. The API's
# text fields refuse both; tags, images and attributes are JSON values.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def _unstorable(value) -> str | None:
    """Why a JSON value, keys included, cannot be stored, or None: text as
    above, or a number that is not finite (JSON parsers read 1e400 as
    infinity; no engine stores infinity or NaN in JSON)."""
    pending = [value]
    while pending:  # A loop, not recursion: the value may nest deeply.
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and _UNSTORABLE.search(item):
            return "Text may not contain null characters or lone surrogates."
        elif isinstance(item, float) and not math.isfinite(item):
            return "Numbers must be finite (not too large, not NaN)."
    return None


class Product(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=new_product_id)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="", max_length=5000)
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(0)]
    )
    # The quantity available to sell: reservations take from it.
    stock = models.PositiveIntegerField(default=0)
    category = models.CharField(max_length=100)
    tags = models.JSONField(default=list, blank=True)
    images = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    # Hidden from customers, kept for order history.
    is_archived = models.BooleanField(default=False)
    # Units sold (committed reservations): "best selling" ordering.
    sold_count = models.PositiveIntegerField(default=0)
    # Bumped by every write, stock included: the ETag, and the guard
    # against lost updates.
    version = models.PositiveIntegerField(default=1)
    # New for each row created: a product deleted and created again under
    # its id starts at version 1 again, and must not share its revisions.
    incarnation = models.CharField(
        max_length=16, default=new_incarnation, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        # Each ordering ends with "id" (a stable page order), and so does its
        # index: the database then reads a page in order and stops.
        indexes = [
            models.Index(
                fields=["category", "price", "id"], name="product_category_price"
            ),
            models.Index(fields=["price", "id"], name="product_price"),
            models.Index(fields=["-created_at", "id"], name="product_created"),
            models.Index(fields=["-sold_count", "id"], name="product_sold"),
        ]

    def __str__(self):
        return f"{self.name} ({self.id})"

    @property
    def revision(self) -> str:
        """What names this content of this product (the ETag's value)."""
        return f"{self.version}-{self.incarnation}"

    def clean(self):
        problems = {
            name: _unstorable(getattr(self, name))
            for name in ("tags", "images", "attributes")
        }
        errors = {name: [problem] for name, problem in problems.items() if problem}
        if errors:
            raise ValidationError(errors)


class StockAdjustment(models.Model):
    """An operator's change of stock, with who, when, how much and why."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    product_id = models.CharField(max_length=64, db_index=True)
    delta = models.IntegerField(help_text="Units added (negative: removed).")
    stock_after = models.PositiveIntegerField()
    reason = models.CharField(max_length=500)
    actor_id = models.CharField(max_length=64, blank=True, default="")
    actor_email = models.CharField(max_length=254, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.product_id} {self.delta:+d}: {self.reason}"


class ReservationStatus(models.TextChoices):
    """Moves only as apps.products.reservations.TRANSITIONS allows."""

    PENDING = "pending", "Pending"  # being applied item by item
    # Released while being made: its maker (or the sweeper) gives it back.
    RELEASING = "releasing", "Releasing"
    ACTIVE = "active", "Active"  # stock held for the order
    COMMITTED = "committed", "Committed"  # sold
    RELEASED = "released", "Released"  # stock given back (cancel or expiry)
    # Never completed (short, or interrupted and repaired); holds nothing.
    FAILED = "failed", "Failed"
    RETURNED = "returned", "Returned"  # sold, then given back (a refund)


class StockReservation(models.Model):
    """Stock held for one order reference; makes every call idempotent."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_ref = models.CharField(max_length=100, unique=True)
    # [{"product_id": str, "quantity": int}], sorted by product id.
    items = models.JSONField()
    # Product ids of the items, for "open reservations of a product".
    product_ids = models.JSONField()
    # Product ids whose stock has been taken so far (repair after a crash).
    applied = models.JSONField(default=list)
    status = models.CharField(
        max_length=16, choices=ReservationStatus.choices, default="pending"
    )
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "expires_at"], name="reservation_due"),
        ]

    def __str__(self):
        return f"{self.order_ref} ({self.status})"
