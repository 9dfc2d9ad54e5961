"""What the catalog deletes once past its retention (ADR 0030)."""

from apps.core.retention import inbox_prune, retention_log
from apps.products.messaging_models import InboxEntry


def catalog_prune_retained(*, dry_run: bool = False) -> dict[str, int]:
    """Prune the inventory consumer's inbox; return rows (would be)
    deleted per table."""
    counts = {"products_inbox": inbox_prune(InboxEntry, dry_run=dry_run)}
    retention_log("catalog", counts, dry_run=dry_run)
    return counts
