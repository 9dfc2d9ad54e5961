"""Calls to a context that runs in another deployment: one request through
the load balancer and the resilience policy (DESIGN.md, "Gateway").

``send`` is shared by the remote interface bindings (apps.gateway.bindings,
JSON calls to the context's internal API) and the public-route proxy
(apps.gateway.proxy, streamed requests and responses):

- an instance is chosen by the context's balancer; a connection refused
  means nothing was sent, so the next instance is tried at once, even for
  a call that is not idempotent, and the refusing one is reported down;
- a timeout, a broken connection or a 5xx answer is a failure the policy
  retries with backoff, for idempotent calls only, and the destination's
  circuit breaker counts;
- an open circuit, a full bulkhead or no healthy instance is a
  ``ContextUnavailable`` (503 with Retry-After) without any call made.
"""

import contextlib
import logging
import math
from collections.abc import Iterable
from typing import Any

import httpx
from django.conf import settings

from apps.core.errors import ServiceUnavailable
from apps.gateway.balancer import balancer_for
from apps.gateway.errors import (
    BulkheadFull,
    CallTimeout,
    CircuitOpen,
    NoHealthyInstance,
    RetryableError,
)
from apps.gateway.resilience import call, http_client, http_timeout

logger = logging.getLogger("apps.gateway.remote")

INTERNAL_TOKEN_HEADER = "X-Internal-Token"


class ContextUnavailable(ServiceUnavailable):
    """No instance of a remote context answered: the circuit is open (no
    call made), every instance is down, or the call timed out."""

    code = "context_unavailable"

    def __init__(self, context: str, reason: str, *, retry_after: int = 1,
                 circuit_open: bool = False):  # fmt: skip
        self.context = context
        self.circuit_open = circuit_open
        super().__init__(
            f"The {context} service is unavailable ({reason}); try again later.",
            retry_after=retry_after,
        )


class Unreachable(RetryableError):
    """The connection to an instance broke while the call was under way."""


class UpstreamFailed(RetryableError):
    """The instance answered 5xx; ``response`` is its (unread) answer."""

    def __init__(self, response: httpx.Response):
        self.response = response
        super().__init__(f"{response.request.url} answered {response.status_code}")


def send(
    context: str,
    method: str,
    path: str,
    *,
    idempotent: bool,
    headers: dict[str, str] | None = None,
    content: bytes | Iterable[bytes] | None = None,
    json: Any = None,
    stream: bool = False,
) -> httpx.Response:
    """Send one request to an instance of ``context``; return its answer
    (status < 500, or the last 5xx once retries are spent).

    With ``stream=True`` the body is left unread: the caller must close the
    response (which also ends the instance's lease, for least-connections).

    Raises:
        ContextUnavailable: nothing usable came back.
    """
    balancer = balancer_for(context)
    client = http_client(context)

    def attempt(*, timeout: float) -> httpx.Response:
        tried: set[str] = set()
        while True:
            # Raises NoHealthyInstance when none is left: a failure the
            # breaker counts, retried for idempotent calls.
            lease = contextlib.ExitStack()
            instance = lease.enter_context(balancer.pick(exclude=tried))
            tried.add(instance.url)
            try:
                request = client.build_request(
                    method,
                    instance.url + path,
                    headers=headers,
                    content=content,
                    json=json,
                    timeout=http_timeout(timeout),
                )
                response = client.send(request, stream=stream)
            except httpx.ConnectError as exc:
                # Refused: nothing was sent, another instance is safe.
                lease.close()
                balancer.report_failure(instance, reason=repr(exc))
                continue
            except httpx.TimeoutException as exc:
                lease.close()
                raise CallTimeout(f"{instance.url}: {exc!r}") from exc
            except httpx.TransportError as exc:
                lease.close()
                raise Unreachable(f"{instance.url}: {exc!r}") from exc
            except BaseException:
                lease.close()
                raise
            if stream:
                _release_on_close(response, lease)
            else:
                lease.close()
            if response.status_code >= 500:
                if stream:  # an error page is small: kept for the last answer
                    response.read()
                    response.close()
                raise UpstreamFailed(response)
            return response

    try:
        return call(context, attempt, idempotent=idempotent)
    except UpstreamFailed as exc:
        return exc.response
    except CircuitOpen as exc:
        raise ContextUnavailable(
            context,
            "circuit open",
            retry_after=math.ceil(exc.retry_after) or 1,
            circuit_open=True,
        ) from exc
    except BulkheadFull as exc:
        raise ContextUnavailable(context, "too many calls in flight") from exc
    except CallTimeout as exc:
        raise ContextUnavailable(context, "timed out") from exc
    except NoHealthyInstance as exc:
        raise ContextUnavailable(context, "no instance reachable") from exc
    except Unreachable as exc:
        raise ContextUnavailable(context, "connection lost") from exc


def _release_on_close(response: httpx.Response, lease: contextlib.ExitStack) -> None:
    """End the instance's lease when the streamed response is closed."""
    close = response.close

    def close_and_release() -> None:
        try:
            close()
        finally:
            lease.close()

    response.close = close_and_release  # type: ignore[method-assign]


def invoke(binding, exposed, args: tuple, kwargs: dict) -> Any:
    """Run an exposed interface function on a remote deployment."""
    from apps.gateway.bindings import RemoteError

    payload = {"arguments": exposed.dump_arguments(args, kwargs)}
    response = send(
        binding.context,
        "POST",
        f"/internal/v1/{binding.context}/{exposed.name}",
        idempotent=exposed.idempotent,
        headers={INTERNAL_TOKEN_HEADER: settings.INTERNAL_API_TOKEN},
        json=payload,
    )
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200 and "result" in body:
        return exposed.load_result(body["result"])
    if isinstance(body.get("error"), dict):
        raise binding.error_from_remote(body["error"])
    if response.status_code >= 500:
        raise ContextUnavailable(binding.context, f"answered {response.status_code}")
    raise RemoteError(
        f"{binding.context}.{exposed.name} answered {response.status_code}: "
        f"{body.get('detail', '')}"
    )
