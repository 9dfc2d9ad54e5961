from celery import shared_task

from apps.orders import retention


@shared_task(acks_late=True)
def orders_prune_retained_task() -> dict[str, int]:
    """Periodic: delete what is past its retention (ADR 0030)."""
    return retention.orders_prune_retained()
