"""Production settings without Prometheus metrics, for measuring what they
cost (docs/performance.md): no django-prometheus middleware (ours
subclass it, apps.core.metrics); run with
METRICS_DATABASE=false so the database engines are not wrapped either."""

from config.settings.prod import *  # noqa: F403
from config.settings.prod import MIDDLEWARE

MIDDLEWARE = [m for m in MIDDLEWARE if ".Prometheus" not in m]
