from django.urls import path, register_converter

from apps.products import views
from apps.products.models import PRODUCT_ID_PATTERN


class ProductIdConverter:
    """Only what a product id can be; anything else is a plain 404."""

    regex = PRODUCT_ID_PATTERN

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(ProductIdConverter, "product_id")

app_name = "products"

urlpatterns = [
    path("products", views.ProductCollectionView.as_view(), name="collection"),
    path("products/search", views.ProductSearchView.as_view(), name="search"),
    path(
        "products/<product_id:product_id>",
        views.ProductDetailView.as_view(),
        name="detail",
    ),
    path(
        "products/<product_id:product_id>/archive",
        views.ProductArchiveView.as_view(),
        name="archive",
    ),
    path(
        "products/<product_id:product_id>/stock-adjustments",
        views.StockAdjustmentView.as_view(),
        name="stock-adjustments",
    ),
]
