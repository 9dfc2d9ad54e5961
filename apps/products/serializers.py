import re

from rest_framework import serializers

from apps.core.serializers import StrictCharField, StrictSerializer
from apps.core.timestamps import iso_utc
from apps.products.selectors import ATTRIBUTE_KEY, ORDERINGS

PRODUCT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


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


class AttributesField(serializers.DictField):
    """Free-form attributes: up to 50 keys, scalar values."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        if len(data) > 50:
            raise serializers.ValidationError("At most 50 attributes.")
        for key, value in data.items():
            if not ATTRIBUTE_KEY.match(key):
                raise serializers.ValidationError(
                    f"Attribute name {key[:60]!r} must be a letter then up to 49 "
                    "letters, digits or underscores."
                )
            if isinstance(value, str):
                if "\x00" in value:
                    raise serializers.ValidationError(
                        f"Attribute {key}: null characters are not allowed."
                    )
                if len(value) > 200:
                    raise serializers.ValidationError(
                        f"Attribute {key}: at most 200 characters."
                    )
            elif value is not None and not isinstance(value, (bool, int, float)):
                raise serializers.ValidationError(
                    f"Attribute {key}: must be a string, number, boolean or null."
                )
        return data


class ProductWriteSerializer(StrictSerializer):
    """Create (POST) and replace (PUT) need every required field; PATCH any
    subset (partial=True)."""

    id = StrictCharField(required=False, max_length=64)
    name = StrictCharField(max_length=200)
    description = StrictCharField(
        max_length=5000, required=False, allow_blank=True, default=""
    )
    price = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, coerce_to_string=True
    )
    stock = serializers.IntegerField(min_value=0, max_value=1_000_000_000)
    category = StrictCharField(max_length=100)
    tags = serializers.ListField(
        child=StrictCharField(max_length=50),
        max_length=20,
        required=False,
        default=list,
    )
    images = serializers.ListField(
        child=serializers.URLField(max_length=500),
        max_length=10,
        required=False,
        default=list,
    )
    attributes = AttributesField(required=False, default=dict)

    def validate_id(self, value):
        if not PRODUCT_ID.match(value) or value == "search":
            raise serializers.ValidationError(
                "Letters, digits, '.', '_' or '-', up to 64, starting with a "
                "letter or digit."
            )
        return value

    def validate_images(self, value):
        for url in value:
            if not url.lower().startswith(("https://", "http://")):
                raise serializers.ValidationError("Image URLs must be http(s).")
        return value


class StockAdjustmentSerializer(StrictSerializer):
    delta = serializers.IntegerField(min_value=-1_000_000_000, max_value=1_000_000_000)
    reason = StrictCharField(max_length=500)


class ProductQuerySerializer(StrictSerializer):
    """Query parameters of the list and search endpoints."""

    category = StrictCharField(required=False, max_length=100)
    tag = serializers.ListField(
        child=StrictCharField(max_length=50), required=False, max_length=5
    )
    min_price = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False
    )
    max_price = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, required=False
    )
    in_stock = serializers.BooleanField(required=False, allow_null=True, default=None)
    archived = serializers.BooleanField(required=False, default=False)
    ordering = serializers.ChoiceField(choices=sorted(ORDERINGS), required=False)
    page = serializers.IntegerField(required=False, min_value=1)
    page_size = serializers.IntegerField(required=False)

    def validate(self, attrs):
        low, high = attrs.get("min_price"), attrs.get("max_price")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError(
                {"min_price": ["Must not exceed max_price."]}
            )
        return attrs


class SearchQuerySerializer(ProductQuerySerializer):
    q = StrictCharField(max_length=200, trim_whitespace=True)
