from rest_framework import serializers

from apps.core.serializers import (
    PageQuerySerializer,
    StrictCharField,
    StrictSerializer,
)
from apps.core.timestamps import iso_utc
from apps.products.models import (
    MAX_STOCK,
    TAG_MAX_LENGTH,
    Product,
    StockAdjustment,
)
from apps.products.selectors import ORDERINGS


def _max_length(name: str) -> int:
    return Product._meta.get_field(name).max_length


def _help_text(name: str) -> str:
    return Product._meta.get_field(name).help_text


class ProductSerializer(serializers.Serializer):
    id = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    price = serializers.DecimalField(max_digits=10, decimal_places=2, read_only=True)
    stock = serializers.IntegerField(read_only=True)
    category = serializers.CharField(read_only=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    images = serializers.ListField(child=serializers.URLField(), read_only=True)
    attributes = serializers.DictField(read_only=True)
    is_archived = serializers.BooleanField(read_only=True)
    sold_count = serializers.IntegerField(read_only=True)
    version = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)


def product_representation(product) -> dict:
    """ProductSerializer's output, built directly.

    The catalog's read paths are hot: DRF builds and walks a field tree per
    object, several times the cost of this. The OpenAPI schema still comes
    from ProductSerializer, and a test keeps the two equal.
    """
    return {
        "id": product.id,
        "name": product.name,
        "description": product.description,
        "price": f"{product.price:.2f}",
        "stock": product.stock,
        "category": product.category,
        "tags": list(product.tags),
        "images": list(product.images),
        "attributes": dict(product.attributes),
        "is_archived": product.is_archived,
        "sold_count": product.sold_count,
        "version": product.version,
        "created_at": iso_utc(product.created_at),
        "updated_at": iso_utc(product.updated_at),
    }


class ProductWriteSerializer(StrictSerializer):
    """Create (POST) and replace (PUT) need every required field; PATCH any
    subset (partial=True).

    Parsing only (types, unknown fields): what a product may hold is the
    model's rule (apps.products.models), checked by the services for every
    writer. Lengths are repeated from the model for the OpenAPI schema.
    """

    id = StrictCharField(required=False, max_length=_max_length("id"))
    name = StrictCharField(max_length=_max_length("name"))
    description = StrictCharField(
        max_length=_max_length("description"),
        required=False,
        allow_blank=True,
        default="",
    )
    price = serializers.DecimalField(
        max_digits=10, decimal_places=2, coerce_to_string=True
    )
    stock = serializers.IntegerField(help_text=f"0 to {MAX_STOCK}")
    category = StrictCharField(max_length=_max_length("category"))
    tags = serializers.ListField(
        child=StrictCharField(allow_blank=True, trim_whitespace=False),
        required=False,
        default=list,
        help_text=_help_text("tags"),
    )
    images = serializers.ListField(
        child=StrictCharField(allow_blank=True, trim_whitespace=False),
        required=False,
        default=list,
        help_text=_help_text("images"),
    )
    attributes = serializers.DictField(
        required=False, default=dict, help_text=_help_text("attributes")
    )


class StockAdjustmentSerializer(StrictSerializer):
    delta = serializers.IntegerField(
        help_text=f"Units added (negative: removed); the stock stays from 0 to "
        f"{MAX_STOCK}."
    )
    reason = StrictCharField(
        max_length=StockAdjustment._meta.get_field("reason").max_length
    )


class ProductQuerySerializer(PageQuerySerializer):
    """Query parameters of the list and search endpoints."""

    category = StrictCharField(
        required=False,
        max_length=_max_length("category"),
        help_text="Exact category",
    )
    tag = serializers.ListField(
        child=StrictCharField(max_length=TAG_MAX_LENGTH),
        required=False,
        max_length=5,
        help_text="Has every tag given",
    )
    min_price = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False
    )
    max_price = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False
    )
    in_stock = serializers.BooleanField(required=False, allow_null=True, default=None)
    archived = serializers.BooleanField(
        required=False, default=False, help_text="Staff: archived products"
    )
    ordering = serializers.ChoiceField(choices=sorted(ORDERINGS), required=False)

    def validate(self, attrs):
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError(
                {"min_price": ["Must not exceed max_price."]}
            )
        return attrs


class SearchQuerySerializer(ProductQuerySerializer):
    q = StrictCharField(max_length=200, trim_whitespace=True, help_text="1-200 chars")
