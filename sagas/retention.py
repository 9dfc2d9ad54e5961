"""What the saga deletes once past its retention (ADR 0030)."""

from apps.core.retention import inbox_prune, retention_log
from sagas.models import InboxEntry


def sagas_prune_retained(*, dry_run: bool = False) -> dict[str, int]:
    """Prune the order saga consumer's inbox; return rows (would be)
    deleted per table."""
    counts = {"sagas_inbox": inbox_prune(InboxEntry, dry_run=dry_run)}
    retention_log("sagas", counts, dry_run=dry_run)
    return counts
