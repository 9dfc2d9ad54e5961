"""RFC 9457 problem details for every error the API can answer.

One DRF exception handler covers API views; Django's handler404/handler500,
the CSRF failure view and ProblemDetailsMiddleware cover everything else, so
a client always gets ``application/problem+json`` with a stable ``code``.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response

from apps.core.errors import DomainError, InvalidInput

logger = logging.getLogger("apps.core.problems")

PROBLEM_CONTENT_TYPE = "application/problem+json"

# Stable codes for DRF's exceptions; anything else uses DRF's default_code.
_DRF_CODES = {
    drf.ParseError: "malformed_request",
    drf.ValidationError: "validation_error",
    drf.NotAuthenticated: "not_authenticated",
    drf.AuthenticationFailed: "authentication_failed",
    drf.PermissionDenied: "permission_denied",
    drf.NotFound: "not_found",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.Throttled: "rate_limited",
}

_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Permission denied",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    412: "Precondition failed",
    413: "Payload too large",
    415: "Unsupported media type",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class PayloadTooLarge(drf.APIException):
    status_code = 413
    default_detail = "The request body is larger than this service accepts."
    default_code = "payload_too_large"


def problem(
    status: int, code: str, detail: str, *, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    """Build a problem-details body."""
    body = {
        "type": f"urn:shop:problem:{code}",
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "code": code,
    }
    body.update(extra)
    return body


def _locate(body: dict[str, Any], request) -> dict[str, Any]:
    """Add where the problem happened: the path and the request id."""
    if request is not None:
        body.setdefault("instance", request.path)
        request_id = getattr(request, "request_id", None)
        if request_id:
            body.setdefault("request_id", request_id)
    return body


def problem_response(request, body: dict[str, Any], headers=None) -> JsonResponse:
    """A plain Django response carrying a problem body (non-DRF paths)."""
    _locate(body, request)
    response = JsonResponse(
        body, status=body["status"], content_type=PROBLEM_CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _flatten(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested error structure into a flat list naming each field."""
    if isinstance(detail, dict):
        items = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            items.extend(_flatten(value, path))
        return items
    if isinstance(detail, list):
        if all(isinstance(d, str) for d in detail):
            return [_error(prefix, d) for d in detail]
        items = []
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                items.extend(_flatten(value, f"{prefix}[{index}]"))
            else:
                items.append(_error(prefix, value))
        return items
    return [_error(prefix, detail)]


def _error(field: str, message: Any) -> dict[str, str]:
    code = getattr(message, "code", None) or "invalid"
    return {"field": field or None, "code": code, "detail": str(message)}


def exception_handler(exc: Exception, context: dict) -> Response:
    """DRF EXCEPTION_HANDLER: every exception becomes problem+json."""
    request = context.get("request")
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = drf.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()

    if isinstance(exc, InvalidInput):
        errors = [
            _error(field, message)
            for field, messages in exc.errors.items()
            for message in messages
        ]
        body = problem(exc.status, exc.code, exc.detail, errors=errors)
    elif isinstance(exc, DomainError):
        body = problem(exc.status, exc.code, exc.detail, title=exc.title, **exc.data)
        if getattr(exc, "retry_after", None):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, drf.ValidationError):
        errors = _flatten(exc.detail)
        body = problem(
            400, "validation_error", "The request has invalid fields.", errors=errors
        )
    elif isinstance(exc, drf.NotAuthenticated) and getattr(request, "auth_error", None):
        # The gateway refused the bearer token (apps/gateway/auth.py) and
        # this endpoint needs a caller: say why the token was refused.
        body = problem(401, "token_not_valid", request.auth_error)
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
    elif isinstance(exc, drf.APIException):
        code = _code_for(exc)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if isinstance(exc.detail, dict):
            # simplejwt puts its message under "detail" with extra keys.
            detail = str(exc.detail.get("detail", exc.default_detail))
        body = problem(exc.status_code, code, str(detail))
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait) or 1)
    else:
        logger.exception(
            "Unhandled error on %s %s (request_id=%s)",
            getattr(request, "method", "?"),
            getattr(request, "path", "?"),
            getattr(request, "request_id", None),
        )
        body = problem(500, "internal_error", "An unexpected error occurred.")

    _locate(body, request)
    response = Response(body, status=body["status"], headers=headers)
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _code_for(exc: drf.APIException) -> str:
    detail = exc.detail
    if isinstance(detail, dict) and "code" in detail:
        return str(detail["code"])  # simplejwt: token_not_valid, user_not_found
    for cls in type(exc).__mro__:
        if cls in _DRF_CODES:
            return _DRF_CODES[cls]
    return getattr(exc, "default_code", "error")


# -- Django-level views (config.urls handler404 / handler500, CSRF) ----------


def not_found(request, exception=None):
    return problem_response(
        request, problem(404, "not_found", "No resource at this address.")
    )


def server_error(request):
    # The exception itself has been logged by django.request.
    return problem_response(
        request, problem(500, "internal_error", "An unexpected error occurred.")
    )


def bad_request(request, exception=None):
    return problem_response(
        request, problem(400, "bad_request", "The request could not be understood.")
    )


def permission_denied(request, exception=None):
    return problem_response(
        request, problem(403, "permission_denied", "Permission denied.")
    )


def csrf_failure(request, reason=""):
    return problem_response(
        request, problem(403, "csrf_failed", f"CSRF verification failed: {reason}")
    )
