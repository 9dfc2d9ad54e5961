from django.urls import path

from apps.products import views

app_name = "products"

urlpatterns = [
    path("products", views.ProductCollectionView.as_view(), name="collection"),
    path("products/search", views.ProductSearchView.as_view(), name="search"),
    path("products/<str:product_id>", views.ProductDetailView.as_view(), name="detail"),
    path(
        "products/<str:product_id>/archive",
        views.ProductArchiveView.as_view(),
        name="archive",
    ),
    path(
        "products/<str:product_id>/stock-adjustments",
        views.StockAdjustmentView.as_view(),
        name="stock-adjustments",
    ),
]
