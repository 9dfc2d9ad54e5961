import re
import uuid

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
    """Give every request an id (the caller's X-Request-ID when sane)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = (
            incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        )
        response = self.get_response(request)
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
