"""Deleting rows past their retention, in bounded batches (ADR 0030).

Each context owns its rows and its own ``<context>_prune_retained``
function; this module holds what they share: the batched delete, and the
rule that keeps an outbox's and an inbox's latest row of each aggregate
(the outbox numbers the next event from it, a consumer checks the next
event's predecessor against it).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import router, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

logger = logging.getLogger("apps.core.retention")


def retention_delete_batched(queryset: QuerySet, *, dry_run: bool = False) -> int:
    """Delete the rows of ``queryset``, at most RETENTION_BATCH_SIZE per
    statement, each batch in its own short transaction; return how many.

    Rows another transaction holds locked (a concurrent prune, a writer)
    are skipped, not waited for: the next run takes them. With
    ``dry_run``, count the rows instead and delete nothing.
    """
    if dry_run:
        return queryset.count()
    model = queryset.model
    db = queryset.db
    batch_size = settings.RETENTION_BATCH_SIZE
    deleted = 0
    while True:
        with transaction.atomic(using=db):
            ids = list(
                queryset.select_for_update(skip_locked=True, of=("self",))
                .order_by()
                .values_list("pk", flat=True)[:batch_size]
            )
            if ids:
                deleted += model._base_manager.using(db).filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            return deleted


def _older_than(seconds: int) -> datetime:
    return timezone.now() - timedelta(seconds=seconds)


def _superseded(model, **same: OuterRef) -> Exists:
    """A later row of the same aggregate (and of ``same``) exists: the row
    is not the one the next event is numbered or checked against."""
    return Exists(
        model._base_manager.filter(
            aggregate_id=OuterRef("aggregate_id"),
            sequence__gt=OuterRef("sequence"),
            **same,
        )
    )


def inbox_prune(model, *, dry_run: bool = False) -> int:
    """Delete the inbox entries processed more than
    EVENTS_INBOX_RETENTION_SECONDS ago, except each consumer's latest entry
    of each aggregate; return how many (with ``dry_run``: would be)."""
    db = router.db_for_write(model)
    stale = model._base_manager.using(db).filter(
        _superseded(model, consumer=OuterRef("consumer")),
        processed_at__lt=_older_than(settings.EVENTS_INBOX_RETENTION_SECONDS),
    )
    return retention_delete_batched(stale, dry_run=dry_run)


def outbox_prune(model, *, dry_run: bool = False) -> int:
    """Delete the outbox events published more than
    EVENTS_OUTBOX_RETENTION_SECONDS ago, except each aggregate's latest
    event; return how many (with ``dry_run``: would be). Pending events
    are never deleted."""
    db = router.db_for_write(model)
    stale = model._base_manager.using(db).filter(
        _superseded(model),
        published_at__lt=_older_than(settings.EVENTS_OUTBOX_RETENTION_SECONDS),
    )
    return retention_delete_batched(stale, dry_run=dry_run)


def retention_log(context: str, counts: dict[str, int], *, dry_run: bool) -> None:
    logger.info(
        "Retention %s%s: %s",
        context,
        " (dry run)" if dry_run else "",
        ", ".join(f"{table} {count}" for table, count in counts.items()),
        extra={"retention": counts, "dry_run": dry_run},
    )
