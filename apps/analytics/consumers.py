"""The analytics consumer: confirmed orders become sale lines; a confirmed
order that is cancelled (refunded) takes its lines back."""

from decimal import Decimal
from uuid import UUID

from apps.analytics.models import SaleLine
from apps.core.messaging.consumers import Event


def analytics_handle(event: Event) -> None:
    order = event.data["order"]
    order_id = UUID(order["id"])
    if event.event_type == "order.confirmed":
        day = event.occurred_at.date()
        SaleLine.objects.bulk_create(
            [
                SaleLine(
                    order_id=order_id,
                    day=day,
                    product_id=item["product_id"],
                    product_name=item["name"],
                    category=item["category"],
                    quantity=item["quantity"],
                    revenue=Decimal(item["unit_price"]) * item["quantity"],
                )
                for item in order["items"]
            ]
        )
    elif event.event_type == "order.cancelled":
        SaleLine.objects.filter(order_id=order_id).delete()
