"""The internal API through which a context in its own deployment serves
its interface to the other deployments (apps.gateway.bindings).

``POST /internal/v1/<context>/<function>`` with ``{"arguments": {...}}``
answers ``{"result": ...}`` (200) or ``{"error": {"type", "detail",
"data"}}`` with the domain error's status. Callers authenticate with the
shared ``INTERNAL_API_TOKEN`` in ``X-Internal-Token`` (ADR 0025); without
a token configured the API does not exist (404). It is never routed to the
public: an ingress exposes /api/ only.
"""

import hmac
import json

import pydantic
from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.core.errors import DomainError
from apps.core.problems import problem, problem_response
from apps.gateway.bindings import context_mode, exposed_function
from apps.gateway.remote import INTERNAL_TOKEN_HEADER


@csrf_exempt
def internal_call(request, context: str, function: str):
    token = settings.INTERNAL_API_TOKEN
    if not token:
        return problem_response(
            request, problem(404, "not_found", "No resource at this address.")
        )
    provided = request.headers.get(INTERNAL_TOKEN_HEADER, "")
    if not hmac.compare_digest(provided.encode(), token.encode()):
        return problem_response(
            request,
            problem(401, "not_authenticated", "A valid internal token is required."),
        )
    exposed = exposed_function(context, function)
    if exposed is None or context_mode(context) != "local":
        return problem_response(
            request,
            problem(
                404, "not_found", f"This deployment serves no {context}.{function}."
            ),
        )
    if request.method != "POST":
        return problem_response(
            request,
            problem(
                405,
                "method_not_allowed",
                f"Method {request.method} is not allowed here.",
            ),
            {"Allow": "POST"},
        )
    try:
        body = json.loads(request.body or b"{}")
        arguments = exposed.load_arguments(body.get("arguments", {}))
    except (ValueError, TypeError, AttributeError, pydantic.ValidationError) as exc:
        return problem_response(
            request, problem(400, "validation_error", f"Bad arguments: {exc}")
        )
    try:
        result = exposed.function(**arguments)
    except DomainError as exc:
        return JsonResponse({"error": exc.to_remote()}, status=exc.status)
    return JsonResponse({"result": exposed.dump_result(result)})
