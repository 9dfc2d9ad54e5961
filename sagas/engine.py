"""The saga engine: a persisted state machine that runs declared steps.

A saga definition is a list of steps, each an action and (optionally) a
compensation, both callables taking a ``StepContext``. Each step and each
compensation runs as a Celery task (``sagas.tasks.saga_step_task``):

1. claim: lock the saga row, check that it is still at this step (a stale or
   redelivered task finds it moved on and does nothing), take the lease;
2. run the callable outside any transaction (it calls other contexts and
   providers, each idempotent by a key made of saga id and step name);
3. record: lock the row again and, in one transaction, write the step log
   and move the saga on, queueing the next task once that commits.

A transient failure is retried with exponential backoff up to
``SAGA_STEP_MAX_ATTEMPTS`` (an open circuit, where the provider was not
even called, is first waited out for up to ``SAGA_CIRCUIT_WAIT_SECONDS``);
a permanent one, or running out of attempts, starts the compensations in
reverse order, the failed step's own first (its
effect may have landed: a charge whose answer was an error). A compensation
that keeps failing halts the saga for an operator (admin: stuck sagas).

Every running or compensating saga has a lease deadline: while its step is
queued, while a worker runs it, while a retry is due. ``saga_sweep`` re-queues
sagas past it (a worker killed mid-step).
"""

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    router,
    transaction,
)
from django.utils import timezone

from apps.core.errors import ServiceUnavailable
from apps.gateway.interface import RETRYABLE, CircuitOpen
from sagas import metrics
from sagas.models import Saga, SagaStatus, SagaStepLog, StepKind, StepStatus

logger = logging.getLogger("sagas")


# -- Definitions ----------------------------------------------------------------


class StepFailed(Exception):
    """A permanent failure of a step: no retry can help. ``reason`` is
    what the customer is told."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


class TransientStepError(Exception):
    """A failure worth retrying (raised by steps for their own reasons)."""


TRANSIENT: tuple[type[BaseException], ...] = (
    *RETRYABLE,
    # A context in another deployment that cannot answer now.
    ServiceUnavailable,
    TransientStepError,
    OperationalError,
    InterfaceError,
    SoftTimeLimitExceeded,
)


@dataclass(frozen=True)
class StepContext:
    saga_id: UUID
    order_id: UUID
    # The outputs of the steps done so far.
    data: dict[str, Any]
    # Why the saga compensates (empty while it runs forward).
    reason: str

    def key(self, step: str) -> str:
        """The idempotency key of ``step`` in this saga."""
        return f"saga:{self.saga_id}:{step}"


@dataclass(frozen=True)
class Step:
    name: str
    action: Callable[[StepContext], dict[str, Any] | None]
    compensation: Callable[[StepContext], None] | None = None
    # Told to the customer when the step runs out of attempts.
    failure_reason: str = "We could not process your order"


@dataclass(frozen=True)
class SagaDefinition:
    saga_type: str
    steps: tuple[Step, ...]


_definitions: dict[str, SagaDefinition] = {}


def register(definition: SagaDefinition) -> SagaDefinition:
    _definitions[definition.saga_type] = definition
    return definition


def definition_of(saga_type: str) -> SagaDefinition:
    return _definitions[saga_type]


# -- The status machine ---------------------------------------------------------

# Each status and the statuses a saga may move to from it.
TRANSITIONS: dict[str, frozenset[str]] = {
    SagaStatus.RUNNING: frozenset({SagaStatus.COMPLETED, SagaStatus.COMPENSATING}),
    # A completed saga compensates when its order is cancelled afterwards.
    SagaStatus.COMPLETED: frozenset({SagaStatus.COMPENSATING}),
    SagaStatus.COMPENSATING: frozenset({SagaStatus.FAILED}),
    SagaStatus.FAILED: frozenset(),
}


class IllegalSagaTransition(Exception):
    def __init__(self, *, current_status: str, requested_status: str):
        self.current_status = current_status
        super().__init__(
            f"The saga is {current_status}; it cannot become {requested_status}."
        )


def _transition(saga: Saga, to_status: str) -> None:
    if to_status not in TRANSITIONS[saga.status]:
        raise IllegalSagaTransition(
            current_status=saga.status, requested_status=to_status
        )
    saga.status = to_status


# -- Settings (read at call time) -------------------------------------------------


def _setting(name: str, default):
    return getattr(settings, name, default)


def max_attempts(kind: str) -> int:
    if kind == StepKind.FORWARD:
        return int(_setting("SAGA_STEP_MAX_ATTEMPTS", 5))
    return int(_setting("SAGA_COMPENSATION_MAX_ATTEMPTS", 10))


def retry_countdown(attempts: int) -> float:
    """Exponential backoff: base, 2 base, 4 base... capped."""
    base = float(_setting("SAGA_RETRY_BACKOFF_SECONDS", 1.0))
    cap = float(_setting("SAGA_RETRY_BACKOFF_MAX_SECONDS", 60.0))
    return min(base * 2 ** max(attempts - 1, 0), cap)


def _circuit_wait(log: SagaStepLog, now) -> float | None:
    """Seconds until a step blocked by an open circuit looks again, or None
    once it has waited SAGA_CIRCUIT_WAIT_SECONDS (then attempts count as
    usual). None with eager tasks (the embedded default), where a wait
    would hold up the request."""
    from config.celery import app

    if app.conf.task_always_eager:
        return None
    budget = float(_setting("SAGA_CIRCUIT_WAIT_SECONDS", 600))
    left = budget - (now - log.started_at).total_seconds()
    if left <= 0:
        return None
    return min(float(_setting("SAGA_CIRCUIT_RETRY_SECONDS", 10)), left)


def _lease() -> timedelta:
    # Longer than a step may run (the task's time limit).
    return timedelta(seconds=float(_setting("SAGA_LEASE_SECONDS", 60)))


def _queue_grace() -> timedelta:
    # How long a queued step may wait for a worker before the sweeper
    # queues it again (a lost message); a duplicate is harmless.
    return timedelta(seconds=float(_setting("SAGA_QUEUE_GRACE_SECONDS", 300)))


def _db() -> str:
    return router.db_for_write(Saga)


# -- Queueing ---------------------------------------------------------------------

_eager = threading.local()


def _enqueue(saga_id: UUID, step_index: int, kind: str, countdown: float = 0) -> None:
    """Queue the task of a step once the current transaction commits.

    With CELERY_TASK_ALWAYS_EAGER (the embedded default) the tasks run one
    after the other in a loop, not nested in each other.
    """
    transaction.on_commit(
        lambda: _send(str(saga_id), step_index, kind, countdown), using=_db()
    )


def _send(saga_id: str, step_index: int, kind: str, countdown: float) -> None:
    from config.celery import app
    from sagas.tasks import saga_step_task

    args = (saga_id, step_index, kind)
    if app.conf.task_always_eager:
        pending = getattr(_eager, "pending", None)
        if pending is not None:
            pending.append(args)
            return
        _eager.pending = deque([args])
        try:
            while _eager.pending:
                saga_step_task.apply(args=_eager.pending.popleft())
        finally:
            _eager.pending = None
        return
    soft = float(_setting("SAGA_STEP_SOFT_TIME_LIMIT_SECONDS", 30))
    saga_step_task.apply_async(
        args=args,
        countdown=countdown or None,
        queue=_setting("SAGA_TASK_QUEUE", "") or None,
        soft_time_limit=soft,
        time_limit=soft + 10,
    )


def _queued(saga: Saga, now, delay: float = 0) -> None:
    """The saga waits for its next task: nobody holds it, with a deadline."""
    saga.lease_owner = ""
    saga.lease_expires_at = now + timedelta(seconds=delay) + _queue_grace()


# -- Services ---------------------------------------------------------------------


def saga_start(*, saga_type: str, order_id: UUID) -> Saga:
    """Create the saga of ``order_id`` and queue its first step; a saga that
    exists already is returned as it is (idempotent)."""
    definition_of(saga_type)
    now = timezone.now()
    with transaction.atomic(using=_db()):
        existing = Saga.objects.filter(saga_type=saga_type, order_id=order_id).first()
        if existing is not None:
            return existing
        saga = Saga(saga_type=saga_type, order_id=order_id, created_at=now)
        _queued(saga, now)
        saga.updated_at = now
        try:
            with transaction.atomic(using=_db()):
                saga.save(force_insert=True)
        except IntegrityError:
            return Saga.objects.get(saga_type=saga_type, order_id=order_id)
        _enqueue(saga.id, 0, StepKind.FORWARD)
    return saga


def saga_compensate(*, saga_id: UUID, reason: str) -> Saga:
    """Undo what the saga did (its order was cancelled, or an operator
    forces it). A running saga compensates from its current step (at once
    if no worker holds it, else once that worker's step ends); a completed
    one from its last step; one compensating or failed already is left."""
    now = timezone.now()
    with transaction.atomic(using=_db()):
        saga = Saga.objects.select_for_update().get(pk=saga_id)
        definition = definition_of(saga.saga_type)
        if saga.status == SagaStatus.RUNNING:
            held = saga.lease_owner and saga.lease_expires_at > now
            if held:
                saga.cancel_requested = True
                saga.failure_reason = saga.failure_reason or reason
                saga.updated_at = now
                saga.save()
            else:
                _start_compensation(saga, definition, saga.current_step, reason, now)
        elif saga.status == SagaStatus.COMPLETED:
            saga.cancel_requested = True
            _start_compensation(
                saga, definition, len(definition.steps) - 1, reason, now
            )
    return saga


def _start_compensation(saga, definition, from_step: int, reason: str, now) -> None:
    _transition(saga, SagaStatus.COMPENSATING)
    saga.failure_reason = saga.failure_reason or reason
    saga.updated_at = now
    _compensate_from(saga, definition, from_step, now)


def _compensate_from(saga, definition, index: int, now) -> None:
    """Point the saga at the highest compensation at or below ``index`` and
    queue it; with none left, the saga has failed (fully compensated)."""
    while index >= 0 and definition.steps[index].compensation is None:
        index -= 1
    saga.current_step = index
    if index < 0:
        _transition(saga, SagaStatus.FAILED)
        metrics.saga_ended(saga, "failed", using=_db())
        saga.lease_owner = ""
        saga.lease_expires_at = None
    else:
        _queued(saga, now)
        _enqueue(saga.id, index, StepKind.COMPENSATION)
    saga.updated_at = now
    saga.save()


def _advance(saga, definition, step_index: int, now) -> None:
    """A forward step is done: the next one, or the end."""
    if saga.cancel_requested:
        _start_compensation(saga, definition, step_index, saga.failure_reason, now)
        return
    if step_index + 1 >= len(definition.steps):
        _transition(saga, SagaStatus.COMPLETED)
        metrics.saga_ended(saga, "completed", using=_db())
        saga.current_step = len(definition.steps)
        saga.lease_owner = ""
        saga.lease_expires_at = None
    else:
        saga.current_step = step_index + 1
        _queued(saga, now)
        _enqueue(saga.id, saga.current_step, StepKind.FORWARD)
    saga.updated_at = now
    saga.save()


def saga_run_step(*, saga_id: UUID, step_index: int, kind: str, task_id: str) -> str:
    """Run one step or compensation of a saga (the body of the task).

    Returns what happened: "done", "retry", "failed", or "skipped" when
    the saga is not (or no longer) at this step, or another worker holds it.
    """
    claimed = _claim(saga_id, step_index, kind, task_id)
    if claimed is None:
        return "skipped"
    saga, step, ctx = claimed
    func = step.action if kind == StepKind.FORWARD else step.compensation
    output: dict[str, Any] | None = None
    error: BaseException | None = None
    permanent: str | None = None
    try:
        output = func(ctx) if func is not None else None
    except TRANSIENT as exc:
        error = exc
    except StepFailed as exc:
        error = exc
        permanent = exc.reason
    except Exception as exc:  # noqa: BLE001 - a bug or an unknown failure
        logger.exception("Saga %s: %s %s failed", saga_id, step.name, kind)
        error = exc
        permanent = step.failure_reason
    return _record(saga_id, step_index, kind, task_id, output, error, permanent)


def _claim(saga_id, step_index: int, kind: str, task_id: str):
    now = timezone.now()
    expected = (
        SagaStatus.RUNNING if kind == StepKind.FORWARD else (SagaStatus.COMPENSATING)
    )
    with transaction.atomic(using=_db()):
        saga = Saga.objects.select_for_update().filter(pk=saga_id).first()
        if saga is None or saga.status != expected or saga.current_step != step_index:
            return None
        if (
            saga.lease_owner
            and saga.lease_owner != task_id
            and saga.lease_expires_at
            and saga.lease_expires_at > now
        ):
            return None
        definition = definition_of(saga.saga_type)
        if kind == StepKind.FORWARD and saga.cancel_requested:
            _start_compensation(saga, definition, step_index, saga.failure_reason, now)
            return None
        step = definition.steps[step_index]
        # The saga row is locked: no other task writes this log meanwhile,
        # so the first attempt inserts it as it is (one query, no savepoint).
        log = SagaStepLog.objects.filter(
            saga=saga, step_index=step_index, kind=kind
        ).first()
        if log is None:
            SagaStepLog.objects.create(
                saga=saga, step_index=step_index, kind=kind, step=step.name,
                status=StepStatus.RUNNING, attempts=1, started_at=now,
            )  # fmt: skip
        elif log.status == StepStatus.DONE:
            # Done in an earlier pass (an operator's retry): move on.
            if kind == StepKind.FORWARD:
                _advance(saga, definition, step_index, now)
            else:
                _compensate_from(saga, definition, step_index - 1, now)
            return None
        else:
            log.attempts += 1
            log.status = StepStatus.RUNNING
            log.save(update_fields=["attempts", "status"])
        saga.lease_owner = task_id
        saga.lease_expires_at = now + _lease()
        saga.updated_at = now
        saga.save(update_fields=["lease_owner", "lease_expires_at", "updated_at"])
        ctx = StepContext(
            saga_id=saga.id,
            order_id=saga.order_id,
            data=dict(saga.context),
            reason=saga.failure_reason,
        )
    return saga, step, ctx


def _record(saga_id, step_index, kind, task_id, output, error, permanent) -> str:
    now = timezone.now()
    with transaction.atomic(using=_db()):
        saga = Saga.objects.select_for_update().get(pk=saga_id)
        if saga.current_step != step_index or saga.lease_owner != task_id:
            # The lease ran out and another task took the step over; its
            # outcome counts (the step is idempotent).
            return "skipped"
        definition = definition_of(saga.saga_type)
        step = definition.steps[step_index]
        # The saga row is locked: nothing else writes its step logs.
        log = SagaStepLog.objects.get(saga=saga, step_index=step_index, kind=kind)
        if error is None:
            log.status = StepStatus.DONE
            log.finished_at = now
            log.save(update_fields=["status", "finished_at"])
            if output:
                saga.context = {**saga.context, **output}
            if kind == StepKind.FORWARD:
                _advance(saga, definition, step_index, now)
            else:
                _compensate_from(saga, definition, step_index - 1, now)
            return "done"
        log.last_error = f"{type(error).__name__}: {error}"[:2000]
        circuit_wait = (
            _circuit_wait(log, now)
            if isinstance(error, CircuitOpen) or getattr(error, "circuit_open", False)
            else None
        )
        if circuit_wait is not None:
            # The provider is known to be down and was not called: waiting
            # for its circuit to close spends no attempt, so a short outage
            # delays orders instead of cancelling them.
            log.attempts -= 1
        if permanent is None and (
            circuit_wait is not None or log.attempts < max_attempts(kind)
        ):
            countdown = circuit_wait or retry_countdown(log.attempts)
            log.status = StepStatus.RETRYING
            log.save(update_fields=["status", "last_error", "attempts"])
            _queued(saga, now, countdown)
            saga.updated_at = now
            saga.save()
            _enqueue(saga.id, step_index, kind, countdown)
            return "retry"
        log.status = StepStatus.FAILED
        log.finished_at = now
        log.save(update_fields=["status", "last_error", "finished_at"])
        if kind == StepKind.FORWARD:
            _start_compensation(
                saga, definition, step_index, permanent or step.failure_reason, now
            )
        else:
            # A compensation that cannot finish needs an operator: the saga
            # halts here (no lease deadline, so the sweeper leaves it).
            logger.error("Saga %s: compensation %s gave up", saga_id, step.name)
            metrics.saga_ended(saga, "halted", using=_db())
            saga.lease_owner = ""
            saga.lease_expires_at = None
            saga.updated_at = now
            saga.save()
        return "failed"


def saga_retry(*, saga_id: UUID) -> bool:
    """Operators: run the current step of a halted or stuck saga again,
    with fresh attempts. Returns whether there was a step to run."""
    now = timezone.now()
    with transaction.atomic(using=_db()):
        saga = Saga.objects.select_for_update().get(pk=saga_id)
        if saga.status not in (SagaStatus.RUNNING, SagaStatus.COMPENSATING):
            return False
        kind = (
            StepKind.FORWARD
            if saga.status == SagaStatus.RUNNING
            else StepKind.COMPENSATION
        )
        SagaStepLog.objects.filter(
            saga=saga, step_index=saga.current_step, kind=kind
        ).exclude(status=StepStatus.DONE).update(attempts=0, status=StepStatus.RETRYING)
        _queued(saga, now)
        saga.updated_at = now
        saga.save()
        _enqueue(saga.id, saga.current_step, kind)
    return True


def saga_sweep(*, now=None, limit: int = 500) -> int:
    """Queue again the current step of every running or compensating saga
    past its lease deadline (its worker died, or its message was lost);
    return how many."""
    now = now or timezone.now()
    due = list(
        Saga.objects.filter(
            status__in=[SagaStatus.RUNNING, SagaStatus.COMPENSATING],
            lease_expires_at__lt=now,
        ).values_list("pk", flat=True)[:limit]
    )
    requeued = 0
    for saga_id in due:
        with transaction.atomic(using=_db()):
            saga = (
                Saga.objects.select_for_update(skip_locked=True)
                .filter(pk=saga_id, lease_expires_at__lt=now)
                .first()
            )
            if saga is None or saga.status not in (
                SagaStatus.RUNNING,
                SagaStatus.COMPENSATING,
            ):
                continue
            kind = (
                StepKind.FORWARD
                if saga.status == SagaStatus.RUNNING
                else StepKind.COMPENSATION
            )
            logger.warning(
                "Saga %s: lease of %s ran out; queueing step %d again",
                saga.pk, saga.lease_owner or "the queue", saga.current_step,
            )  # fmt: skip
            _queued(saga, now)
            saga.updated_at = now
            saga.save()
            _enqueue(saga.id, saga.current_step, kind)
            requeued += 1
    return requeued
