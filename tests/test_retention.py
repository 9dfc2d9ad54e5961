"""Retention across the contexts (ADR 0030): what the inbox keeps is enough
to drop a redelivered event, and the command and beat tasks run each
context's own pruning."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from apps.analytics.models import InboxEntry as AnalyticsInbox
from apps.core.messaging.consumers import OutOfOrder, consume
from apps.core.messaging.topology import ConsumerSpec
from apps.orders.messaging_models import InboxEntry as OrdersInbox
from apps.products.messaging_models import InboxEntry as CatalogInbox
from config.celery import app
from sagas.models import InboxEntry as SagasInbox

pytestmark = pytest.mark.django_db(databases="__all__")

INBOXES = {
    "orders": OrdersInbox,
    "catalog": CatalogInbox,
    "analytics": AnalyticsInbox,
    "sagas": SagasInbox,
}
APPLIED: list[tuple[str, int]] = []


def record_handle(event) -> None:
    APPLIED.append((event.aggregate_id, event.sequence))


SPEC = ConsumerSpec(
    name="retention-test",
    handler="tests.test_retention.record_handle",
    inbox="analytics.InboxEntry",
    bindings=("order.*",),
)


def _envelope(aggregate_id: str, sequence: int, event_id: uuid.UUID) -> dict:
    return {
        "event_id": str(event_id),
        "event_type": "order.test",
        "schema_version": 1,
        "occurred_at": timezone.now().isoformat(),
        "aggregate_id": aggregate_id,
        "sequence": sequence,
        "data": {},
    }


def _old() -> timezone.datetime:
    return timezone.now() - timedelta(
        seconds=settings.EVENTS_INBOX_RETENTION_SECONDS + 60
    )


def _old_entries(model, *, consumer="c", aggregate_id="a", count=3) -> None:
    for sequence in range(1, count + 1):
        model.objects.create(
            consumer=consumer,
            event_id=uuid.uuid4(),
            event_type="order.test",
            aggregate_id=aggregate_id,
            sequence=sequence,
            processed_at=_old(),
        )


def test_an_event_redelivered_after_its_inbox_entry_was_pruned_is_not_applied_again():
    APPLIED.clear()
    envelopes = [_envelope("order-1", n, uuid.uuid4()) for n in (1, 2, 3, 4)]
    for envelope in envelopes[:3]:
        assert consume(SPEC, envelope) == "applied"
    AnalyticsInbox.objects.filter(consumer=SPEC.name).update(processed_at=_old())

    call_command("prune_retained", "--context", "analytics", stdout=StringIO())
    redelivered = [consume(SPEC, envelope) for envelope in envelopes[:3]]
    following = consume(SPEC, envelopes[3])

    assert list(
        AnalyticsInbox.objects.filter(consumer=SPEC.name).values_list(
            "sequence", flat=True
        )
    ) == [4, 3]
    assert redelivered == ["duplicate"] * 3
    assert following == "applied"
    assert APPLIED == [("order-1", n) for n in (1, 2, 3, 4)]


def test_an_event_still_waits_for_its_predecessor_after_pruning():
    APPLIED.clear()
    for n in (1, 2):
        consume(SPEC, _envelope("order-2", n, uuid.uuid4()))
    AnalyticsInbox.objects.filter(consumer=SPEC.name).update(processed_at=_old())
    call_command("prune_retained", "--context", "analytics", stdout=StringIO())

    with pytest.raises(OutOfOrder):
        consume(SPEC, _envelope("order-2", 4, uuid.uuid4()))

    assert consume(SPEC, _envelope("order-2", 3, uuid.uuid4())) == "applied"


def test_dry_run_reports_the_counts_and_deletes_nothing():
    for model in INBOXES.values():
        _old_entries(model)
    out = StringIO()

    call_command("prune_retained", "--dry-run", stdout=out)

    lines = out.getvalue().splitlines()
    for context, model in INBOXES.items():
        assert f"{context} {model._meta.db_table}: would delete 2" in lines
        assert model.objects.count() == 3
    assert "users users_refreshtokenfamily: would delete 0" in lines

    call_command("prune_retained", stdout=out)

    for context, model in INBOXES.items():
        assert f"{context} {model._meta.db_table}: deleted 2" in out.getvalue()
        assert list(model.objects.values_list("sequence", flat=True)) == [3]


def test_deletes_in_batches_until_nothing_is_left(settings):
    settings.RETENTION_BATCH_SIZE = 2
    _old_entries(CatalogInbox, count=6)

    out = StringIO()
    call_command("prune_retained", "--context", "catalog", stdout=out)

    assert "catalog products_inbox: deleted 5" in out.getvalue()
    assert list(CatalogInbox.objects.values_list("sequence", flat=True)) == [6]


@pytest.mark.parametrize("context", sorted(settings.RETENTION_PRUNERS))
def test_each_context_has_a_beat_scheduled_retention_task_that_runs(context):
    entry = settings.CELERY_BEAT_SCHEDULE[f"{context}-prune-retained"]
    assert entry["schedule"] == settings.RETENTION_INTERVAL_SECONDS
    model = INBOXES.get(context)
    if model is not None:
        _old_entries(model)

    app.loader.import_default_modules()
    result = app.tasks[entry["task"]].apply().get()

    assert all(count >= 0 for count in result.values())
    if model is not None:
        assert result[model._meta.db_table] == 2
        assert model.objects.count() == 1
