"""The public routes of a context that runs in another deployment, proxied
to its instances (DESIGN.md, "Gateway").

``settings.CONTEXT_ROUTES`` names each context's path prefixes; when
``settings.CONTEXTS[name]["mode"]`` is ``"remote"``, a request under one of
them is not resolved here but sent on by ``apps.gateway.remote.send``:

- hop-by-hop headers (RFC 9110 section 7.6.1, and those the Connection
  header names) are dropped both ways; ``X-Forwarded-For``, ``-Proto`` and
  ``-Host`` are set; ``X-Request-ID``, ``traceparent`` and ``tracestate``
  travel on (the tracing instrumentation of httpx, when on, continues the
  trace itself);
- the response body is streamed back as it arrives; a request body up to
  ``GATEWAY_PROXY_BUFFER_BYTES`` is read first so that an idempotent
  request can be retried on another instance, a larger one is streamed and
  never retried;
- only idempotent methods are retried (a refused connection is tried on the
  next instance whatever the method: nothing was sent);
- no instance, an open circuit or a full bulkhead: 503 problem+json with
  Retry-After, at once.
"""

from collections.abc import Iterator

from django.conf import settings
from django.http import StreamingHttpResponse

from apps.core.problems import problem, problem_response
from apps.gateway.remote import ContextUnavailable, send

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_CHUNK = 64 * 1024


def remote_context_for(path: str) -> str | None:
    """The remote context that serves ``path``, if any."""
    contexts = settings.CONTEXTS
    for context, prefixes in settings.CONTEXT_ROUTES.items():
        if contexts.get(context, {}).get("mode") != "remote":
            continue
        for prefix in prefixes:
            if path == prefix or path.startswith(
                prefix if prefix.endswith("/") else prefix + "/"
            ):
                return context
    return None


def _request_headers(request) -> dict[str, str]:
    connection = request.headers.get("Connection", "")
    dropped = HOP_BY_HOP | {t.strip().lower() for t in connection.split(",") if t}
    dropped |= {"host", "content-length", "x-forwarded-for", "x-forwarded-host",
                "x-forwarded-proto", "x-request-id",
                # The internal API's credential is never a client's to send.
                "x-internal-token"}  # fmt: skip
    # Bytes: a WSGI header is latin-1 text, which httpx would encode as
    # ASCII (and fail on "é").
    headers = {
        name: value.encode("latin-1")
        for name, value in request.headers.items()
        if name.lower() not in dropped
    }
    client = request.META.get("REMOTE_ADDR", "")
    earlier = request.headers.get("X-Forwarded-For", "")
    headers["X-Forwarded-For"] = f"{earlier}, {client}" if earlier else client
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.get_host()
    request_id = getattr(request, "request_id", None)
    if request_id:
        headers["X-Request-ID"] = request_id
    return headers


def _body(request) -> tuple[bytes | Iterator[bytes] | None, bool]:
    """The body to send and whether it can be sent again."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0 and "chunked" not in request.headers.get("Transfer-Encoding", ""):
        return None, True
    if 0 < length <= settings.GATEWAY_PROXY_BUFFER_BYTES:
        return request.read(length), True

    def chunks() -> Iterator[bytes]:
        while chunk := request.read(_CHUNK):
            yield chunk

    return chunks(), False


def proxy(request, context: str):
    """Send ``request`` to an instance of ``context``; stream its answer."""
    content, replayable = _body(request)
    idempotent = request.method in IDEMPOTENT_METHODS and replayable
    try:
        upstream = send(
            context,
            request.method,
            request.get_full_path(),
            idempotent=idempotent,
            headers=_request_headers(request),
            content=content,
            stream=True,
        )
    except ContextUnavailable as exc:
        return problem_response(
            request,
            problem(exc.status, exc.code, exc.detail),
            {"Retry-After": str(exc.retry_after)},
        )
    body = (
        iter([upstream.content])
        if upstream.is_stream_consumed
        else upstream.iter_raw(_CHUNK)
    )
    response = StreamingHttpResponse(body, status=upstream.status_code)
    dropped = HOP_BY_HOP | {
        t.strip().lower()
        for t in upstream.headers.get("connection", "").split(",")
        if t
    }
    for name, value in upstream.headers.multi_items():
        if name.lower() not in dropped:
            response.headers[name] = value  # last one wins for repeated names
    response._resource_closers.append(upstream.close)
    return response


def _has_dot_segments(path: str) -> bool:
    """``.`` or ``..`` segments (``%2e`` is decoded before Django sees the
    path): httpx would resolve them, so ``/api/v1/products/../users/login``
    would reach another route than the one checked here and rate-limited."""
    return any(segment in (".", "..") for segment in path.split("/"))


class GatewayProxyMiddleware:
    """Proxy the public routes of remote contexts; everything else passes."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        context = remote_context_for(request.path)
        if context is None:
            return self.get_response(request)
        if _has_dot_segments(request.path):
            return problem_response(
                request,
                problem(400, "malformed_path", "The path has . or .. segments."),
            )
        return proxy(request, context)
