"""Sales reports: sale lines grouped by day, product or category."""

from datetime import date

from django.db.models import Count, QuerySet, Sum

from apps.analytics.models import SaleLine

GROUPINGS = {
    "day": ("day",),
    "product": ("product_id", "product_name", "category"),
    "category": ("category",),
}
_ORDER = {
    "day": ("-day",),
    "product": ("-revenue", "product_id"),
    "category": ("-revenue", "category"),
}


def sales_report(
    *, group_by: str, date_from: date | None = None, date_to: date | None = None
) -> QuerySet:
    lines = SaleLine.objects.all()
    if date_from:
        lines = lines.filter(day__gte=date_from)
    if date_to:
        lines = lines.filter(day__lte=date_to)
    return (
        lines.values(*GROUPINGS[group_by])
        .annotate(
            orders=Count("order_id", distinct=True),
            units=Sum("quantity"),
            revenue=Sum("revenue"),
        )
        .order_by(*_ORDER[group_by])
    )
