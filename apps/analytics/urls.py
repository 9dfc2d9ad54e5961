from django.urls import path

from apps.analytics import views

app_name = "analytics"

urlpatterns = [
    path("analytics/sales", views.SalesReportView.as_view(), name="sales"),
]
