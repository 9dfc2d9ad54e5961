"""What every log line says about where it comes from: the trace and span
ids of the current span, and the request id and user id of the request
being served (ADR 0024).

``RequestIdMiddleware`` binds the request for the time it is served; the
``LogContextFilter`` on the handlers reads it when a record is written. The
user id is read then, from the principal the authentication put on the
request (``request.principal``, or Django's ``request.user`` once something
has loaded it), so logging never costs a query.
"""

import logging
from contextvars import ContextVar, Token

from django.http import HttpRequest
from django.utils.functional import LazyObject, empty
from opentelemetry import trace

_request: ContextVar = ContextVar("log_request", default=None)

FIELDS = ("trace_id", "span_id", "request_id", "user_id")


def bind_request(request) -> Token:
    """Make ``request`` the one log records describe, until ``unbind``; its
    trace and span ids are kept on it for records written after that."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        request.trace_ids = (
            format(context.trace_id, "032x"),
            format(context.span_id, "016x"),
        )
    return _request.set(request)


def unbind(token: Token) -> None:
    _request.reset(token)


def user_id_of(request) -> str | None:
    """The id of the request's authenticated principal, if already known;
    never loads it."""
    principal = getattr(request, "principal", None)
    if principal is not None:
        principal_id = getattr(principal, "id", None)
        return None if principal_id is None else str(principal_id)
    user = vars(request).get("user")
    if isinstance(user, LazyObject):
        # AuthenticationMiddleware's lazy user: known only once evaluated.
        user = user._wrapped
        if user is empty:
            return None
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


class LogContextFilter(logging.Filter):
    """Adds trace_id, span_id, request_id and user_id to every record (None
    where unknown), for the formatters to print."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs a failed response's line after the middleware chain
        # has returned (the request unbound, its span ended), with the
        # request on the record: the ids are taken from it then.
        request = _request.get()
        if request is None:
            request = getattr(record, "request", None)
            request = getattr(request, "_request", request)  # DRF's Request
            if not isinstance(request, HttpRequest):  # runserver: a socket
                request = None
        if not hasattr(record, "trace_id"):
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                record.trace_id = format(context.trace_id, "032x")
                record.span_id = format(context.span_id, "016x")
            else:
                record.trace_id, record.span_id = getattr(
                    request, "trace_ids", (None, None)
                )
        if not hasattr(record, "request_id"):
            record.request_id = getattr(request, "request_id", None)
        if not hasattr(record, "user_id"):
            record.user_id = None if request is None else user_id_of(request)
        return True


class ReadableFormatter(logging.Formatter):
    """Development: one line a record, its context at the end when known."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{name}={value}"
            for name in FIELDS
            if name != "span_id" and (value := getattr(record, name, None))
        )
        if not context:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first}  [{context}]{newline}{rest}"


def json_formatter():
    """Production: one JSON object a line (python-json-logger)."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        ["levelname", "name", "message", *FIELDS],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp=True,
    )
