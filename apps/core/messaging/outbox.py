"""Writing events to an outbox, in the caller's transaction."""

import uuid
from typing import Any

from django.db import connections, router, transaction
from django.db.models import Max
from django.utils import timezone

from apps.core.messaging.tracing import current_trace_context


def outbox_append(
    model,
    *,
    aggregate_id: str,
    event_type: str,
    schema_version: int,
    data: dict[str, Any],
    sequence: int | None = None,
):
    """Write one event row for ``aggregate_id`` and return it.

    Run inside the transaction that made the change, with the aggregate's row
    locked, so that the event commits with the change and the sequence has
    no gaps. ``sequence`` may be given when the caller knows it (1 for a
    new aggregate's first event), saving a query. On PostgreSQL a
    ``NOTIFY`` (delivered at commit) wakes the relay; with the inline
    publisher the event is published in-process once the transaction
    commits. The current trace context is stored with the event, for the
    relay to send on.
    """
    db = router.db_for_write(model)
    if sequence is None:
        last = (
            model.objects.using(db)
            .filter(aggregate_id=aggregate_id)
            .aggregate(last=Max("sequence"))["last"]
        )
        sequence = (last or 0) + 1
    event_id = uuid.uuid4()
    now = timezone.now()
    envelope = {
        "event_id": str(event_id),
        "event_type": event_type,
        "schema_version": schema_version,
        "occurred_at": now.isoformat(),
        "aggregate_id": aggregate_id,
        "sequence": sequence,
        "data": data,
    }
    event = model.objects.using(db).create(
        id=event_id,
        aggregate_id=aggregate_id,
        sequence=sequence,
        event_type=event_type,
        envelope=envelope,
        created_at=now,
        trace_context=current_trace_context(),
    )
    connection = connections[db]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [notify_channel(model)])
    transaction.on_commit(lambda: _after_commit(model), using=db)
    return event


def notify_channel(model) -> str:
    """The PostgreSQL NOTIFY channel that wakes the relay of ``model``."""
    return f"outbox_{model._meta.db_table}"


def _after_commit(model) -> None:
    from django.conf import settings

    if settings.EVENTS_PUBLISHER == "inline":
        from apps.core.messaging import relay

        relay.relay_inline(model)
