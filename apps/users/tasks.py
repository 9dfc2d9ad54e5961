from celery import shared_task

from apps.users import retention


@shared_task(acks_late=True)
def users_prune_retained_task() -> dict[str, int]:
    """Periodic: delete what is past its retention (ADR 0030)."""
    return retention.users_prune_retained()
