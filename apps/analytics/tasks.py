from celery import shared_task

from apps.analytics import retention


@shared_task(acks_late=True)
def analytics_prune_retained_task() -> dict[str, int]:
    """Periodic: delete what is past its retention (ADR 0030)."""
    return retention.analytics_prune_retained()
