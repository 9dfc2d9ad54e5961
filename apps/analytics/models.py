"""Sales facts built from order events (alias ``default``).

One row per line of a confirmed order; a cancelled confirmed order's rows
are removed. Reports group these rows by day, product or category.
"""

import uuid

from django.db import models

from apps.core.messaging.models import InboxEntryBase


class SaleLine(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    order_id = models.UUIDField(db_index=True)
    # The day (UTC) the order was confirmed.
    day = models.DateField()
    product_id = models.CharField(max_length=64)
    product_name = models.CharField(max_length=200)
    category = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField()
    revenue = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["-day", "product_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_id", "product_id"], name="sale_line_order_product"
            )
        ]
        indexes = [
            models.Index(fields=["day"], name="sale_line_day"),
            models.Index(fields=["category", "day"], name="sale_line_category"),
        ]

    def __str__(self):
        return f"{self.day} {self.quantity} x {self.product_name}"


class InboxEntry(InboxEntryBase):
    class Meta(InboxEntryBase.Meta):
        db_table = "analytics_inbox"
        verbose_name_plural = "inbox entries"
