"""One resilience policy for every call that leaves the process (DESIGN.md,
"Gateway"): a timeout per attempt and a total deadline, retries with
exponential backoff for idempotent calls only, and a circuit breaker per
destination (pybreaker) whose state is shared across processes in Redis
when ``CIRCUIT_BREAKER_REDIS_URL`` is set (in-process otherwise).

The callee receives the per-attempt timeout as a ``timeout`` keyword and
enforces it (as an HTTP client's read timeout does): a thread cannot be
interrupted from outside, so the policy bounds the retries and the total
time, and the callee the single attempt.

Figures come from settings, read at call time, with the DESIGN.md values
as defaults.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pybreaker
from django.conf import settings

from apps.gateway.metrics import BreakerStateListener

T = TypeVar("T")


class RetryableError(Exception):
    """A failure another attempt may not meet (a 5xx, a dropped connection).

    Raise it (or a subclass) from a callee for what is worth retrying;
    anything else is the caller's business and is neither retried nor
    counted by the circuit breaker.
    """


class CallTimeout(RetryableError, TimeoutError):
    """The call (or all its attempts together) took longer than allowed."""


class CircuitOpen(RetryableError):
    """The destination's circuit is open: the call was not made."""

    def __init__(self, destination: str):
        self.destination = destination
        super().__init__(f"The circuit to {destination} is open.")


# What the policy retries and the breaker counts.
RETRYABLE: tuple[type[BaseException], ...] = (
    RetryableError,
    TimeoutError,
    ConnectionError,
)


@dataclass(frozen=True)
class Policy:
    timeout: float = 5.0  # seconds per attempt (DESIGN: request 5 s)
    total_timeout: float = 7.0  # seconds for all attempts together
    retry_delays: tuple[float, ...] = (0.1, 0.2, 0.4)
    breaker_fail_max: int = 5
    breaker_reset_timeout: float = 60.0
    breaker_success_threshold: int = 3  # trial calls while half-open
    breaker_redis_url: str = ""
    retryable: tuple[type[BaseException], ...] = field(default=RETRYABLE)


def policy_from_settings() -> Policy:
    """The policy the settings describe (DESIGN.md figures by default)."""
    return Policy(
        timeout=float(getattr(settings, "RESILIENCE_TIMEOUT_SECONDS", 5.0)),
        total_timeout=float(getattr(settings, "RESILIENCE_TOTAL_TIMEOUT_SECONDS", 7.0)),
        retry_delays=tuple(
            int(ms) / 1000
            for ms in getattr(settings, "RESILIENCE_RETRY_DELAYS_MS", (100, 200, 400))
        ),
        breaker_fail_max=int(getattr(settings, "CIRCUIT_BREAKER_FAIL_MAX", 5)),
        breaker_reset_timeout=float(
            getattr(settings, "CIRCUIT_BREAKER_RESET_SECONDS", 60)
        ),
        breaker_success_threshold=int(
            getattr(settings, "CIRCUIT_BREAKER_SUCCESS_THRESHOLD", 3)
        ),
        breaker_redis_url=getattr(settings, "CIRCUIT_BREAKER_REDIS_URL", ""),
    )


_breakers: dict[tuple, pybreaker.CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def circuit_breaker(destination: str, policy: Policy) -> pybreaker.CircuitBreaker:
    """The breaker of ``destination`` (one per process and configuration;
    with Redis storage every process shares its state)."""
    key = (
        destination,
        policy.breaker_fail_max,
        policy.breaker_reset_timeout,
        policy.breaker_success_threshold,
        policy.breaker_redis_url,
        policy.retryable,
    )
    with _breakers_lock:
        breaker = _breakers.get(key)
        if breaker is None:
            retryable = policy.retryable
            breaker = pybreaker.CircuitBreaker(
                fail_max=policy.breaker_fail_max,
                reset_timeout=policy.breaker_reset_timeout,
                success_threshold=policy.breaker_success_threshold,
                # Business answers (a declined card) say nothing about the
                # destination's health.
                exclude=[lambda exc: not isinstance(exc, retryable)],
                state_storage=_storage(destination, policy),
                name=destination,
                listeners=[BreakerStateListener()],
            )
            _breakers[key] = breaker
        return breaker


def _storage(destination: str, policy: Policy):
    if not policy.breaker_redis_url:
        return pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
    import redis

    client = redis.Redis.from_url(
        policy.breaker_redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    return pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED, client, namespace=f"circuit:{destination}"
    )


def call(
    destination: str,
    fn: Callable[..., T],
    *args: Any,
    idempotent: bool,
    policy: Policy | None = None,
    **kwargs: Any,
) -> T:
    """Call ``fn(*args, timeout=<seconds>, **kwargs)`` under the policy.

    Args:
        destination: names the circuit (one breaker per destination).
        fn: the call; it must honour its ``timeout`` keyword.
        idempotent: only then are retryable failures retried (with
            the backoff delays); the call must carry an idempotency key.
        policy: default ``policy_from_settings()``.

    Returns what ``fn`` returns.

    Raises:
        CircuitOpen: the circuit is open; nothing was called.
        CallTimeout: the total deadline passed.
        Exception: the last failure of ``fn``.
    """
    policy = policy or policy_from_settings()
    breaker = circuit_breaker(destination, policy)
    delays = policy.retry_delays if idempotent else ()
    deadline = time.monotonic() + policy.total_timeout
    for attempt in range(len(delays) + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CallTimeout(f"{destination}: no time left for attempt {attempt + 1}")
        try:
            return breaker.call(
                fn, *args, timeout=min(policy.timeout, remaining), **kwargs
            )
        except pybreaker.CircuitBreakerError:
            raise CircuitOpen(destination) from None
        except policy.retryable:
            if attempt == len(delays):
                raise
            pause = delays[attempt]
            if time.monotonic() + pause >= deadline:
                raise
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover
