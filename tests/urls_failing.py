"""A URLconf with views that fail, for testing the error handlers."""

from django.urls import path
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny

from config.urls import handler404, handler500  # noqa: F401
from config.urls import urlpatterns as project_urlpatterns


@api_view(["GET"])
@permission_classes([AllowAny])
def api_boom(request):
    raise RuntimeError("secret internal detail")


def django_boom(request):
    raise RuntimeError("secret internal detail")


urlpatterns = [
    path("boom/api", api_boom),
    path("boom/django", django_boom),
    *project_urlpatterns,
]
