"""Celery tasks of the saga engine: one per step run, and the sweeper.

Both take ids and load fresh state; ``saga_step_task`` is idempotent by the
saga row (a redelivered or stale task finds the saga moved on). Retries are
the engine's (a new task with a countdown, counted in the step log), so the
task itself never retries.
"""

from uuid import UUID

from celery import shared_task

from sagas import engine, retention


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def saga_step_task(self, saga_id: str, step_index: int, kind: str) -> str:
    return engine.saga_run_step(
        saga_id=UUID(saga_id),
        step_index=step_index,
        kind=kind,
        task_id=self.request.id or "eager",
    )


@shared_task
def saga_sweep_task() -> int:
    return engine.saga_sweep()


@shared_task(acks_late=True)
def sagas_prune_retained_task() -> dict[str, int]:
    """Periodic: delete what is past its retention (ADR 0030)."""
    return retention.sagas_prune_retained()
