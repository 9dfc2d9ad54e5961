"""Rules that more than one context or layer meets are defined once and
imported (issue 9)."""


def test_the_product_id_pattern_is_stated_once():
    """The URL converter, the model and the orders' lines use one pattern."""
    from apps.orders.models import OrderItem
    from apps.products.models import PRODUCT_ID_PATTERN, product_id_validator
    from apps.products.urls import ProductIdConverter

    assert ProductIdConverter.regex == PRODUCT_ID_PATTERN
    assert product_id_validator in OrderItem._meta.get_field("product_id").validators
