from django.urls import path

from apps.gateway import views

app_name = "gateway"

urlpatterns = [
    path("gateway/status", views.GatewayStatusView.as_view(), name="status"),
]
