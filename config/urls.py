from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.core import health, metrics
from apps.core.messaging.admin_views import dead_letters_view
from apps.gateway.internal import internal_call
from apps.users.views import JwksView

admin.site.site_header = "Shop operations"
admin.site.site_title = "Shop admin"

handler400 = "apps.core.problems.bad_request"
handler403 = "apps.core.problems.permission_denied"
handler404 = "apps.core.problems.not_found"
handler500 = "apps.core.problems.server_error"

api_v1 = [
    path("", include("apps.users.urls")),
    path("", include("apps.products.urls")),
    path("", include("apps.orders.urls")),
    path("", include("apps.analytics.urls")),
    path("", include("apps.gateway.urls")),
]

urlpatterns = [
    # A newcomer's first two addresses: the API docs, and the admin.
    path("", RedirectView.as_view(url="/api/docs/"), name="home"),
    path("admin", RedirectView.as_view(url="/admin/")),
    path("api/v1/", include(api_v1)),
    path(".well-known/jwks.json", JwksView.as_view(), name="jwks"),
    path("internal/v1/<str:context>/<str:function>", internal_call),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path(
        "admin/dead-letters/",
        admin.site.admin_view(dead_letters_view),
        name="admin-dead-letters",
    ),
    path("admin/", admin.site.urls),
]
