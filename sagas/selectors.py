"""Saga reads shared by the admin and the metrics."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from sagas.models import Saga, SagaStatus


def stuck_sagas(
    *, queryset: QuerySet | None = None, now: datetime | None = None
) -> QuerySet:
    """Running or compensating sagas past their lease deadline, halted (no
    deadline: a compensation gave up) or without progress for
    SAGA_STUCK_MINUTES (default 10); of ``queryset`` (default: all)."""
    now = now or timezone.now()
    minutes = getattr(settings, "SAGA_STUCK_MINUTES", 10)
    queryset = Saga.objects.all() if queryset is None else queryset
    return queryset.filter(
        status__in=[SagaStatus.RUNNING, SagaStatus.COMPENSATING]
    ).filter(
        Q(lease_expires_at__lt=now)
        | Q(lease_expires_at__isnull=True)
        | Q(updated_at__lt=now - timedelta(minutes=minutes))
    )
