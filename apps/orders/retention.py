"""What the orders context deletes once past its retention (ADR 0030)."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.core.retention import (
    inbox_prune,
    outbox_prune,
    retention_delete_batched,
    retention_log,
)
from apps.orders.messaging_models import InboxEntry, OutboxEvent
from apps.orders.models import IdempotencyRecord


def idempotency_records_prune(*, dry_run: bool = False) -> int:
    """Delete the Idempotency-Key records older than
    ORDERS_IDEMPOTENCY_RETENTION_SECONDS: the key, retried afterwards, places
    a new order (ADR 0012, 0030). Returns how many (would be) deleted."""
    cutoff = timezone.now() - timedelta(
        seconds=settings.ORDERS_IDEMPOTENCY_RETENTION_SECONDS
    )
    return retention_delete_batched(
        IdempotencyRecord.objects.filter(created_at__lt=cutoff), dry_run=dry_run
    )


def orders_prune_retained(*, dry_run: bool = False) -> dict[str, int]:
    """Prune the orders context's tables; return rows (would be) deleted
    per table."""
    counts = {
        "order_idempotency_keys": idempotency_records_prune(dry_run=dry_run),
        "orders_outbox": outbox_prune(OutboxEvent, dry_run=dry_run),
        "orders_inbox": inbox_prune(InboxEntry, dry_run=dry_run),
    }
    retention_log("orders", counts, dry_run=dry_run)
    return counts
