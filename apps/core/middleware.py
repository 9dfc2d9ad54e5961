import re
import uuid

from opentelemetry import context, propagate, trace

from apps.core import logs
from apps.core.problems import problem, problem_response

_CODES = {
    400: "bad_request",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    """Give every request an id (the caller's X-Request-ID when sane), in
    the response and in every log line written while serving it.

    Also takes the caller's W3C ``traceparent``/``tracestate`` when tracing
    is off (with tracing on, OpenTelemetry's Django middleware, first in
    the chain, has made a span of it already), so that the outbox and
    outgoing calls pass the caller's trace on (ADR 0024).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request.request_id = (
            incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
        span = trace.get_current_span()
        trace_token = None
        if span.is_recording():
            span.set_attribute("shop.request_id", request.request_id)
        elif "HTTP_TRACEPARENT" in request.META and not (
            span.get_span_context().is_valid
        ):
            trace_token = context.attach(propagate.extract(request.headers))
        log_token = logs.bind_request(request)
        try:
            response = self.get_response(request)
        finally:
            logs.unbind(log_token)
            if trace_token is not None:
                context.detach(trace_token)
        response["X-Request-ID"] = request.request_id
        return response


class ProblemDetailsMiddleware:
    """Turn Django's own plain error responses into problem+json.

    Django answers some errors itself without calling a view (405 from
    ``require_http_methods``, for instance). The admin keeps its HTML pages.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and not request.path.startswith("/admin/")
            and not response.get("Content-Type", "").startswith(
                ("application/problem+json", "application/json")
            )
            and not getattr(response, "streaming", False)
        ):
            status = response.status_code
            code = _CODES.get(status, f"http_{status}")
            headers = {}
            if status == 405 and response.has_header("Allow"):
                headers["Allow"] = response["Allow"]
            detail = {
                404: "No resource at this address.",
                405: f"Method {request.method} is not allowed here.",
            }.get(status, "The request failed.")
            return problem_response(request, problem(status, code, detail), headers)
        return response


class AdminOnlyMiddleware:
    """Runs ``settings.ADMIN_ONLY_MIDDLEWARE`` (session, CSRF, Django auth,
    messages: what the admin's HTML pages need) for every path but the
    machine ones (``settings.ADMIN_ONLY_SKIP_PREFIXES``: the API, the
    probes). API clients authenticate with bearer tokens and send no
    cookies, so the four did nothing there but cost about a third of the
    cheapest request (docs/performance.md, issue 11).

    The wrapped middleware keep their order and hooks: CSRF's
    ``process_view`` runs here, in this entry's place in MIDDLEWARE.
    """

    def __init__(self, get_response):
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
        from django.core.handlers.exception import convert_exception_to_response
        from django.utils.module_loading import import_string

        self.get_response = get_response
        self.skip = tuple(settings.ADMIN_ONLY_SKIP_PREFIXES)
        handler = get_response
        view_hooks = []
        for path in reversed(settings.ADMIN_ONLY_MIDDLEWARE):
            try:
                middleware = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            for hook in ("process_template_response", "process_exception"):
                if hasattr(middleware, hook):
                    raise ImproperlyConfigured(f"{path}: {hook} is not forwarded")
            if hasattr(middleware, "process_view"):
                view_hooks.insert(0, middleware.process_view)
            handler = convert_exception_to_response(middleware)
        self.wrapped = handler
        self.view_hooks = view_hooks

    def __call__(self, request):
        if request.path_info.startswith(self.skip):
            return self.get_response(request)
        return self.wrapped(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path_info.startswith(self.skip):
            return None
        for hook in self.view_hooks:
            response = hook(request, view_func, view_args, view_kwargs)
            if response is not None:
                return response
        return None
