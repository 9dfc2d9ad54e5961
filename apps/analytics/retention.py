"""What analytics deletes once past its retention (ADR 0030)."""

from apps.analytics.models import InboxEntry
from apps.core.retention import inbox_prune, retention_log


def analytics_prune_retained(*, dry_run: bool = False) -> dict[str, int]:
    """Prune the analytics consumer's inbox; return rows (would be)
    deleted per table."""
    counts = {"analytics_inbox": inbox_prune(InboxEntry, dry_run=dry_run)}
    retention_log("analytics", counts, dry_run=dry_run)
    return counts
