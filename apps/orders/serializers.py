"""HTTP shapes of the orders API. Input serializers parse (types, unknown
fields); the rules (quantities, caps, catalog checks) are the services'."""

from rest_framework import serializers

from apps.core.serializers import (
    PageQuerySerializer,
    StrictCharField,
    StrictSerializer,
)
from apps.orders.models import OrderStatus
from apps.orders.services import MAX_ORDER_LINES
from apps.products.interface import PRODUCT_ID_MAX_LENGTH


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer: no strings, floats or booleans."""

    default_error_messages = {"not_an_integer": "Must be a whole number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return data


class OrderLineInputSerializer(StrictSerializer):
    product_id = StrictCharField(max_length=PRODUCT_ID_MAX_LENGTH)
    quantity = StrictIntegerField(help_text="1 to 1000")


class OrderPlaceSerializer(StrictSerializer):
    # The cap also bounds the work of parsing a large body.
    items = OrderLineInputSerializer(
        many=True,
        max_length=MAX_ORDER_LINES,
        help_text=(
            f"1 to {MAX_ORDER_LINES} lines; lines naming the same product "
            "are merged (quantities summed, at most 1000 per product)."
        ),
    )
    payment_method = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=64,
        default="",
        help_text="The payment provider's token; stored, never shown back.",
    )


class OrderCancelSerializer(StrictSerializer):
    reason = StrictCharField(
        required=False, allow_blank=True, max_length=500, default=""
    )


class OrderQuerySerializer(PageQuerySerializer):
    """Query parameters of the order list."""

    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    user_id = serializers.UUIDField(
        required=False, help_text="Staff: one user's orders"
    )


# -- Output, documented (selectors.order_representation builds it) ------------


class OrderItemSerializer(serializers.Serializer):
    product_id = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
    line_total = serializers.DecimalField(max_digits=12, decimal_places=2)


class OrderStatusChangeSerializer(serializers.Serializer):
    # Plain strings: one enum per choice set keeps the schema's names unique.
    from_status = serializers.CharField(
        allow_null=True, help_text="The status before; null for the creation"
    )
    to_status = serializers.CharField(help_text="The status after")
    reason = serializers.CharField()
    actor = serializers.CharField(help_text='"customer", "staff" or "system"')
    changed_at = serializers.DateTimeField()


class OrderSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    user_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=OrderStatus.choices)
    total_amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    cancel_reason = serializers.CharField()
    items = OrderItemSerializer(many=True)
    history = OrderStatusChangeSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
