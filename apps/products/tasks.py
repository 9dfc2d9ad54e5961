from datetime import timedelta

from celery import shared_task

from apps.products import reservations, retention, search


@shared_task(acks_late=True)
def reservations_release_expired_task() -> dict[str, int]:
    """Periodic: release expired holds and repair interrupted ones."""
    return {
        "released": reservations.reservations_release_expired(),
        "repaired": reservations.reservations_repair_interrupted(
            older_than=timedelta(minutes=5)
        ),
    }


@shared_task(acks_late=True)
def catalog_prune_retained_task() -> dict[str, int]:
    """Periodic: delete what is past its retention (ADR 0030)."""
    return retention.catalog_prune_retained()


@shared_task(acks_late=True)
def search_words_prune_task() -> int:
    """Periodic: forget the search vocabulary's words that no product has
    any more (PostgreSQL; ADR 0028)."""
    return search.search_words_prune()
