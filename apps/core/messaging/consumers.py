"""Applying events: exactly one effect per event, in order per aggregate.

``consume`` runs a consumer's handler and records the event in the
consumer's inbox in one transaction on the inbox's database, so that the
work and the record commit together; the broker message is acknowledged
only afterwards. A redelivered event finds its inbox entry and does
nothing; so does an event older than an applied event of its aggregate,
whose own entry retention may have pruned (ADR 0030). An event whose
predecessor (same aggregate, sequence - 1) has not been applied yet is
deferred, so a retried or reordered event never overtakes an earlier one.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from django.apps import apps
from django.db import IntegrityError, router, transaction
from django.db.models import Q
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string

from apps.core.messaging import tracing
from apps.core.messaging.topology import ConsumerSpec

logger = logging.getLogger("apps.core.messaging.consumers")


class TransientError(Exception):
    """A failure worth retrying later (a dependency down, a timeout)."""


class PermanentError(Exception):
    """A failure no retry can mend: the event goes to the dead letters."""


class OutOfOrder(TransientError):
    """An earlier event of the same aggregate has not been applied yet."""


@dataclass(frozen=True)
class Event:
    """An event as a consumer's handler receives it."""

    event_id: UUID
    event_type: str
    schema_version: int
    occurred_at: datetime
    aggregate_id: str
    sequence: int
    data: dict[str, Any]

    @classmethod
    def from_envelope(cls, envelope: Any) -> "Event":
        try:
            occurred_at = parse_datetime(envelope["occurred_at"])
            if occurred_at is None:
                raise ValueError("occurred_at is not a date-time")
            event = cls(
                event_id=UUID(envelope["event_id"]),
                event_type=str(envelope["event_type"]),
                schema_version=int(envelope["schema_version"]),
                occurred_at=occurred_at,
                aggregate_id=str(envelope["aggregate_id"]),
                sequence=int(envelope["sequence"]),
                data=dict(envelope["data"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentError(f"Malformed event envelope: {exc!r}") from None
        if event.sequence < 1:
            raise PermanentError("Malformed event envelope: sequence < 1")
        return event


@cache
def _handler(path: str) -> Callable[[Event], None]:
    return import_string(path)


def routes_to(spec: ConsumerSpec, event_type: str) -> bool:
    """Whether ``event_type`` matches one of the consumer's routing keys
    (AMQP topic rules: ``*`` one word, ``#`` zero or more)."""
    words = event_type.split(".")
    return any(_topic_match(key.split("."), words) for key in spec.bindings)


def _topic_match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_topic_match(rest, words[i:]) for i in range(len(words) + 1))
    if not words:
        return False
    return (head in ("*", words[0])) and _topic_match(rest, words[1:])


def consume(spec: ConsumerSpec, envelope: Any) -> str:
    """Apply one event for consumer ``spec``; return "applied" or
    "duplicate".

    Raises:
        PermanentError: the envelope is malformed, or the handler says no
            retry can help.
        OutOfOrder: the previous event of the aggregate is not applied yet.
        Exception: whatever the handler raised (retried by the caller).
    """
    event = Event.from_envelope(envelope)
    inbox = apps.get_model(spec.inbox)
    db = router.db_for_write(inbox)
    entries = inbox.objects.using(db).filter(consumer=spec.name)
    try:
        with transaction.atomic(using=db):
            # One look at the inbox: this event already, its predecessor, or
            # a later event of the aggregate. Events are applied in order,
            # so a later one means this one was applied, even once
            # retention pruned its own entry (ADR 0030).
            seen = set(
                entries.filter(
                    Q(event_id=event.event_id)
                    | Q(
                        aggregate_id=event.aggregate_id,
                        sequence__gte=event.sequence - 1,
                    )
                ).values_list("sequence", flat=True)
            )
            if any(sequence >= event.sequence for sequence in seen):
                return "duplicate"
            if event.sequence > 1 and event.sequence - 1 not in seen:
                raise OutOfOrder(
                    f"{event.event_type} #{event.sequence} of {event.aggregate_id} "
                    f"waits for #{event.sequence - 1}"
                )
            _handler(spec.handler)(event)
            inbox.objects.using(db).create(
                consumer=spec.name,
                event_id=event.event_id,
                event_type=event.event_type,
                aggregate_id=event.aggregate_id,
                sequence=event.sequence,
            )
    except IntegrityError:
        # Another replica of this consumer applied it meanwhile; this
        # attempt's work was rolled back with the failed insert.
        if entries.filter(event_id=event.event_id).exists():
            return "duplicate"
        raise
    return "applied"


def consume_inline(
    spec: ConsumerSpec, envelope: dict, trace_context: dict | None = None
) -> None:
    """The embedded default: apply at once; a failure is logged, not
    retried (there is no broker to hold the event)."""
    try:
        with tracing.consuming(
            trace_context, envelope, consumer=spec.name, exchange="inline"
        ):
            consume(spec, envelope)
    except Exception:
        logger.exception(
            "Consumer %s failed on %s %s",
            spec.name,
            envelope.get("event_type"),
            envelope.get("event_id"),
        )
