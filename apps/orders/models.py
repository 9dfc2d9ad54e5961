"""Orders persistence (alias ``orders``).

The user is referenced by id (the users context owns it), products by id
with their name, category and price copied at order time. Status changes
only through ``services`` (one transition table).
"""

import uuid
from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.orders.messaging_models import InboxEntry, OutboxEvent  # noqa: F401
from apps.products.interface import PRODUCT_ID_MAX_LENGTH, product_id_validator

# A single order line; a larger quantity is a typo or abuse, not a purchase.
MAX_LINE_QUANTITY = 1000


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # placed; the saga reserves and charges
    CONFIRMED = "confirmed", "Confirmed"  # paid; waits to be shipped
    SHIPPED = "shipped", "Shipped"  # handed to the carrier
    COMPLETED = "completed", "Completed"  # delivered; final
    CANCELLED = "cancelled", "Cancelled"  # by customer, staff or saga; final


class Order(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The users context's user id; no foreign key across contexts.
    user_id = models.UUIDField()
    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    total_amount = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal(0))]
    )
    # The payment provider's token for the saga's payment step; never shown.
    payment_method = models.CharField(max_length=64, blank=True, default="")
    cancel_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "orders"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user_id", "-created_at"], name="order_user_created"),
            models.Index(fields=["status", "-created_at"], name="order_status_created"),
            models.Index(fields=["-created_at"], name="order_created"),
        ]

    def __str__(self):
        return f"Order {self.id} ({self.status})"


class OrderItem(models.Model):
    """A product line: name, category and unit price as they were at order
    time. One line per product (repeated products are merged)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product_id = models.CharField(
        max_length=PRODUCT_ID_MAX_LENGTH, validators=[product_id_validator]
    )
    product_name = models.CharField(max_length=200)
    category = models.CharField(max_length=100, blank=True, default="")
    quantity = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_LINE_QUANTITY)]
    )
    # The unit price at order time.
    price = models.DecimalField(
        max_digits=10, decimal_places=2, validators=[MinValueValidator(Decimal(0))]
    )

    class Meta:
        db_table = "order_items"
        ordering = ["product_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "product_id"], name="order_item_one_line_per_product"
            )
        ]

    def __str__(self):
        return f"{self.quantity} x {self.product_id}"


class OrderStatusChange(models.Model):
    """One step of an order's history, its creation included."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="history")
    # Null for the order's creation.
    from_status = models.CharField(
        max_length=16, choices=OrderStatus.choices, null=True, blank=True
    )
    to_status = models.CharField(max_length=16, choices=OrderStatus.choices)
    reason = models.CharField(max_length=500, blank=True, default="")
    # Who made the change: "customer", "staff:<email>", "system".
    actor = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "order_status_changes"
        ordering = ["created_at", "id"]
        verbose_name = "status change"

    def __str__(self):
        return f"{self.from_status or '-'} -> {self.to_status}"


class IdempotencyRecord(models.Model):
    """The first answer to an order placement sent with an Idempotency-Key,
    written in the same transaction as the order (ADR 0012)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user_id = models.UUIDField()
    key = models.CharField(max_length=255)
    # sha256 (hex) of the canonical JSON of the parsed request body.
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    order = models.ForeignKey(
        Order, on_delete=models.CASCADE, related_name="idempotency_records"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "order_idempotency_keys"
        constraints = [
            models.UniqueConstraint(
                fields=["user_id", "key"], name="order_idempotency_user_key"
            )
        ]
        # Retention (ADR 0030) deletes records by age.
        indexes = [
            models.Index(fields=["created_at"], name="order_idempotency_created")
        ]

    def __str__(self):
        return f"{self.user_id} {self.key}"
