"""The sagas' metrics (apps/core/metrics.py, ADR 0023): outcomes and
durations counted by the engine when a saga ends, and the stuck sagas
measured when scraped."""

from django.db import transaction
from django.utils import timezone
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from apps.core.metrics import StateCollector
from sagas import selectors

SAGA_OUTCOMES = Counter(
    "shop_saga_outcomes",
    "Sagas ended, by type and outcome: completed (every step done), failed "
    "(compensations ran; the order cancelled), halted (a compensation gave "
    "up; an operator must act).",
    ["saga", "outcome"],
)
SAGA_DURATION = Histogram(
    "shop_saga_duration_seconds",
    "From a saga's start to its completion or its last compensation.",
    ["saga"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)


def saga_ended(saga, outcome: str, *, using: str) -> None:
    """Count ``saga``'s outcome once the transaction that records it
    commits (a rolled-back ending did not happen)."""
    saga_type = saga.saga_type
    seconds = max((timezone.now() - saga.created_at).total_seconds(), 0.0)

    def record():
        SAGA_OUTCOMES.labels(saga=saga_type, outcome=outcome).inc()
        if outcome != "halted":
            SAGA_DURATION.labels(saga=saga_type).observe(seconds)

    transaction.on_commit(record, using=using)


class StuckSagasCollector(StateCollector):
    def measure(self):
        yield GaugeMetricFamily(
            "shop_sagas_stuck",
            "Running or compensating sagas past their lease, halted, or "
            "without progress for SAGA_STUCK_MINUTES.",
            value=selectors.stuck_sagas().count(),
        )
