"""``GET /api/v1/gateway/status``: what the gateway of this process knows
(staff only): each context, where it runs, its public routes, and for a
remote one its instances with their health and its circuit."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from apps.core.views import ApiView
from apps.gateway.balancer import balancer_for
from apps.gateway.resilience import breaker_states


class GatewayStatusView(ApiView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        summary="Gateway status: routes, instances and circuit breakers (staff)",
        responses={200: dict},
    )
    def get(self, request):
        circuits = breaker_states()
        contexts = []
        for name, config in settings.CONTEXTS.items():
            mode = config.get("mode", "local")
            entry = {
                "name": name,
                "mode": mode,
                "routes": list(settings.CONTEXT_ROUTES.get(name, ())),
            }
            if mode == "remote":
                balancer = balancer_for(name)
                entry["balancer"] = config.get("balancer", "round_robin")
                entry["instances"] = balancer.snapshot()
                entry["circuit"] = circuits.get(name, "closed")
            contexts.append(entry)
        return Response({"contexts": contexts, "circuits": circuits})
