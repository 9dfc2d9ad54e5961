"""The orders context's state for Prometheus, measured when scraped
(apps/core/metrics.py, ADR 0023)."""

from prometheus_client.core import GaugeMetricFamily

from apps.core.metrics import StateCollector
from apps.orders import selectors


class OrdersCollector(StateCollector):
    def measure(self):
        family = GaugeMetricFamily(
            "shop_orders", "Orders in each status.", labels=["status"]
        )
        for status, count in sorted(selectors.order_counts_by_status().items()):
            family.add_metric([status], count)
        yield family
