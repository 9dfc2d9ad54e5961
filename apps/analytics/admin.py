from django.contrib import admin
from django.db.models import Sum

from apps.analytics.models import SaleLine
from apps.core.admin import ReadOnlyAdmin


@admin.register(SaleLine)
class SaleLineAdmin(ReadOnlyAdmin):
    """Sales lines of confirmed orders; written only by the analytics
    consumer, so read-only here. The totals follow the filters."""

    list_display = ("day", "product_name", "category", "quantity", "revenue")
    list_filter = ("day", "category")
    date_hierarchy = "day"
    search_fields = ("product_id", "product_name", "=order_id")
    change_list_template = "admin/analytics/saleline/change_list.html"

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            queryset = changelist.queryset
            response.context_data["totals"] = queryset.aggregate(
                units=Sum("quantity"), revenue=Sum("revenue")
            )
            response.context_data["by_category"] = (
                queryset.values("category")
                .annotate(units=Sum("quantity"), revenue=Sum("revenue"))
                .order_by("-revenue")[:20]
            )
        return response
