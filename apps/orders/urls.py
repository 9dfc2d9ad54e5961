from django.urls import path

from apps.orders import views

app_name = "orders"

urlpatterns = [
    path("orders", views.OrderCollectionView.as_view(), name="collection"),
    path("orders/<uuid:order_id>", views.OrderDetailView.as_view(), name="detail"),
    path(
        "orders/<uuid:order_id>/cancel",
        views.OrderCancelView.as_view(),
        name="cancel",
    ),
    path("orders/<uuid:order_id>/ship", views.OrderShipView.as_view(), name="ship"),
    path(
        "orders/<uuid:order_id>/complete",
        views.OrderCompleteView.as_view(),
        name="complete",
    ),
]
