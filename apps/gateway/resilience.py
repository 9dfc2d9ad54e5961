"""One resilience policy for every call that leaves the process (DESIGN.md,
"Gateway"; ADR 0020): a bulkhead per destination, a circuit breaker per
destination (pybreaker, state shared across processes in Redis when
``CIRCUIT_BREAKER_REDIS_URL`` is set, per process otherwise), a timeout per
attempt within a total deadline, and retries with backoff (tenacity) for
idempotent calls only.

The callee receives the per-attempt timeout as a ``timeout`` keyword and
enforces it (as an HTTP client's read timeout does; ``http_timeout()``
builds the httpx form): a thread cannot be interrupted from outside, so the
policy bounds the retries and the total time, and the callee the single
attempt. Remote callers use ``http_client(destination)``: one pooled httpx
client per destination per process.

Figures come from settings, read at call time, with the DESIGN.md values
as defaults.

pybreaker drives the breaker's states and storage, but calls do not go
through ``CircuitBreaker.call``: it holds the breaker's lock for the whole
call (every call to a destination would run one at a time in a process),
lets every call through while half-open, and a process that notices a state
another process set resets the shared counters. ``_Circuit`` admits calls
(atomically in Redis: open, cool-down over, half-open, at most
``breaker_success_threshold`` trial calls) and records their outcomes
through pybreaker's storage and its ``open()``/``close()``.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import httpx
import pybreaker
import redis
import tenacity
from django.conf import settings
from redis.exceptions import RedisError

from apps.gateway.errors import (
    BulkheadFull,
    CallTimeout,
    CircuitOpen,
    RetryableError,
)
from apps.gateway.metrics import BreakerStateListener, breaker_state_seen

__all__ = [
    "RETRYABLE",
    "Bulkhead",
    "BulkheadFull",
    "CallTimeout",
    "CircuitOpen",
    "Policy",
    "RetryableError",
    "breaker_states",
    "bulkhead",
    "call",
    "circuit_breaker",
    "http_client",
    "http_timeout",
    "policy_from_settings",
]

logger = logging.getLogger("gateway")

T = TypeVar("T")

# What the policy retries and the breaker counts.
RETRYABLE: tuple[type[BaseException], ...] = (
    RetryableError,
    TimeoutError,
    ConnectionError,
    httpx.TransportError,
)
# Raised before the destination was called: never retried here, never
# counted by the breaker.
NOT_CALLED: tuple[type[BaseException], ...] = (CircuitOpen, BulkheadFull)


@dataclass(frozen=True)
class Policy:
    timeout: float = 5.0  # seconds per attempt (DESIGN: request 5 s)
    total_timeout: float = 7.0  # seconds for the whole call, all attempts
    connect_timeout: float = 2.0  # seconds to open a connection
    retry_delays: tuple[float, ...] = (0.1, 0.2, 0.4)
    breaker_fail_max: int = 5
    breaker_reset_timeout: float = 60.0
    # Trial calls let through while half-open, all needed to close it.
    breaker_success_threshold: int = 3
    breaker_redis_url: str = ""
    bulkhead_max_concurrent: int = 10
    bulkhead_max_queue: int = 20
    # How the policy waits between attempts (tests record the pauses).
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)


def policy_from_settings() -> Policy:
    """The policy the settings describe (DESIGN.md figures by default)."""
    return Policy(
        timeout=float(getattr(settings, "RESILIENCE_TIMEOUT_SECONDS", 5.0)),
        total_timeout=float(getattr(settings, "RESILIENCE_TOTAL_TIMEOUT_SECONDS", 7.0)),
        connect_timeout=float(
            getattr(settings, "RESILIENCE_CONNECT_TIMEOUT_SECONDS", 2.0)
        ),
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
        bulkhead_max_concurrent=int(
            getattr(settings, "RESILIENCE_BULKHEAD_MAX_CONCURRENT", 10)
        ),
        bulkhead_max_queue=int(getattr(settings, "RESILIENCE_BULKHEAD_MAX_QUEUE", 20)),
    )


# -- Bulkhead ---------------------------------------------------------------------


class Bulkhead:
    """At most ``max_concurrent`` calls at once and ``max_queue`` waiting
    for a turn (in arrival order); one more is rejected at once."""

    def __init__(self, name: str, *, max_concurrent: int, max_queue: int):
        if max_concurrent < 1 or max_queue < 0:
            raise ValueError("A bulkhead needs max_concurrent >= 1, max_queue >= 0")
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self._condition = threading.Condition()
        self._running = 0
        self._waiting = 0

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return self._waiting

    def acquire(self, *, deadline: float | None = None) -> None:
        """Take a place, waiting until ``deadline`` (``time.monotonic()``)
        at most.

        Raises:
            BulkheadFull: the pool and the queue are full.
            CallTimeout: the deadline passed while waiting.
        """
        with self._condition:
            # A newcomer queues behind the waiters instead of taking a place
            # just freed for one of them.
            if self._running < self.max_concurrent and not self._waiting:
                self._running += 1
                return
            if self._waiting >= self.max_queue:
                raise BulkheadFull(self.name)
            self._waiting += 1
            try:
                while self._running >= self.max_concurrent:
                    remaining = (
                        None if deadline is None else deadline - time.monotonic()
                    )
                    if remaining is not None and remaining <= 0:
                        # A place freed meanwhile goes to the next waiter.
                        self._condition.notify()
                        raise CallTimeout(f"{self.name}: waited for a place too long")
                    self._condition.wait(remaining)
                self._running += 1
            finally:
                self._waiting -= 1

    def release(self) -> None:
        with self._condition:
            self._running -= 1
            self._condition.notify()


# -- Circuit breaker ----------------------------------------------------------------

Verdict = Literal["closed", "open", "trial", "busy"]


class _MemoryStorage(pybreaker.CircuitMemoryStorage):
    """pybreaker's in-process storage with atomic admission."""

    def __init__(self) -> None:
        super().__init__(pybreaker.STATE_CLOSED)
        self._guard = threading.Lock()
        self._trials = 0
        self._trials_until = 0.0

    def admit(
        self, *, reset_timeout: float, trials: int, window: float
    ) -> tuple[Verdict, float]:
        with self._guard:
            now = time.time()
            if self.state == pybreaker.STATE_OPEN:
                opened = self.opened_at.timestamp() if self.opened_at else 0.0
                remaining = opened + reset_timeout - now
                if remaining > 0:
                    return "open", remaining
                self.state = pybreaker.STATE_HALF_OPEN
                self.reset_success_counter()
                self._trials = 0
            if self.state == pybreaker.STATE_HALF_OPEN:
                if self._trials == 0 or now >= self._trials_until:
                    self._trials, self._trials_until = 0, now + window
                self._trials += 1
                if self._trials <= trials:
                    return "trial", 0.0
                return "busy", self._trials_until - now
            return "closed", float(self.counter)


# Admission in one step, so that of all the processes sharing the circuit
# exactly one moves it from open to half-open and at most ARGV[3] trial
# calls pass in each trial window (ARGV[4] ms: trials that never report,
# from a killed process, do not hold the circuit half-open for ever).
# Returns strings: Redis truncates Lua numbers to integers.
_ADMIT_SCRIPT = """
local state = redis.call('GET', KEYS[1]) or 'closed'
if state == 'open' then
  local opened = tonumber(redis.call('GET', KEYS[2]) or '0')
  local remaining = opened + tonumber(ARGV[2]) - tonumber(ARGV[1])
  if remaining > 0 then return {'open', tostring(remaining)} end
  redis.call('SET', KEYS[1], 'half-open')
  redis.call('SET', KEYS[3], 0)
  redis.call('DEL', KEYS[4])
  state = 'half-open'
end
if state == 'half-open' then
  local n = redis.call('INCR', KEYS[4])
  if n == 1 then redis.call('PEXPIRE', KEYS[4], ARGV[4]) end
  if n <= tonumber(ARGV[3]) then return {'trial', '0'} end
  return {'busy', tostring(redis.call('PTTL', KEYS[4]) / 1000)}
end
return {'closed', redis.call('GET', KEYS[5]) or '0'}
"""


class _RedisStorage(pybreaker.CircuitRedisStorage):
    """pybreaker's Redis storage with atomic admission; a Redis outage reads
    as a closed circuit (pybreaker's fallback) instead of failing calls."""

    def __init__(self, client, namespace: str):
        self._client = client
        self._script = client.register_script(_ADMIT_SCRIPT)
        self._prefix = f"{namespace}:{self.BASE_NAMESPACE}"
        self._admit_keys = [
            f"{self._prefix}:{name}"
            for name in (
                "state",
                "opened_at",
                "success_counter",
                "trials",
                "fail_counter",
            )
        ]
        super().__init__(pybreaker.STATE_CLOSED, client, namespace=namespace)

    def _initialize_redis_state(self, state: str) -> None:
        try:
            super()._initialize_redis_state(state)
        except RedisError:
            logger.warning("Circuit storage %s unreachable", self._prefix)

    def admit(
        self, *, reset_timeout: float, trials: int, window: float
    ) -> tuple[Verdict, float]:
        try:
            verdict, value = self._script(
                keys=self._admit_keys,
                args=[time.time(), reset_timeout, trials, max(int(window * 1000), 1)],
            )
        except RedisError:
            logger.warning("Circuit storage %s unreachable: closed", self._prefix)
            return "closed", 0.0
        return verdict.decode(), float(value)


# What a verdict of the shared storage says of the circuit's state.
_SEEN = {
    "closed": pybreaker.STATE_CLOSED,
    "trial": pybreaker.STATE_HALF_OPEN,
    "busy": pybreaker.STATE_HALF_OPEN,
    "open": pybreaker.STATE_OPEN,
}


class _Circuit:
    """The breaker of one destination: admission and outcomes."""

    def __init__(self, destination: str, policy: Policy):
        self.destination = destination
        self.policy = policy
        self.storage = _storage(destination, policy)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=policy.breaker_fail_max,
            reset_timeout=policy.breaker_reset_timeout,
            success_threshold=policy.breaker_success_threshold,
            # Business answers (a declined card) say nothing about the
            # destination's health.
            exclude=[lambda exc: not isinstance(exc, RETRYABLE)],
            state_storage=self.storage,
            name=destination,
            listeners=[BreakerStateListener()],
        )
        self._lock = threading.Lock()

    def admit(self) -> tuple[Verdict, float]:
        """Whether a call may go: ``("closed", failures so far)`` or
        ``("trial", 0)``.

        Raises:
            CircuitOpen: open and cooling down, or every trial taken.
        """
        policy = self.policy
        verdict, value = self.storage.admit(
            reset_timeout=policy.breaker_reset_timeout,
            trials=policy.breaker_success_threshold,
            window=policy.total_timeout,
        )
        breaker_state_seen(self.destination, _SEEN[verdict])
        if verdict in ("open", "busy"):
            raise CircuitOpen(self.destination, retry_after=value)
        return verdict, value

    def record(self, verdict: Verdict, failures: float, error: BaseException | None):
        """Count the outcome of an admitted call.

        Raises:
            CircuitOpen: this failure opened the circuit.
        """
        storage, breaker = self.storage, self.breaker
        with self._lock:
            if error is None or not breaker.is_system_error(error):
                if verdict == "trial":
                    storage.increment_success_counter()
                    if (
                        storage.success_counter >= breaker.success_threshold
                        and storage.state == pybreaker.STATE_HALF_OPEN
                    ):
                        breaker.close()
                elif failures:
                    storage.reset_counter()  # failures count when in a row
                return
            state = storage.state
            if state == pybreaker.STATE_CLOSED:
                storage.increment_counter()
                if storage.counter < breaker.fail_max:
                    return
            elif state != pybreaker.STATE_HALF_OPEN:
                return  # opened meanwhile by another call
            breaker.open()
            logger.warning("Circuit to %s opened: %r", self.destination, error)
        raise CircuitOpen(
            self.destination, retry_after=self.policy.breaker_reset_timeout
        ) from error


def _storage(destination: str, policy: Policy):
    if not policy.breaker_redis_url:
        return _MemoryStorage()
    client = redis.Redis.from_url(
        policy.breaker_redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    return _RedisStorage(client, namespace=f"circuit:{destination}")


def _policy_key(destination: str, policy: Policy) -> tuple:
    return (
        destination,
        policy.breaker_fail_max,
        policy.breaker_reset_timeout,
        policy.breaker_success_threshold,
        policy.breaker_redis_url,
        policy.total_timeout,
    )


_circuits: dict[tuple, _Circuit] = {}
# The circuit each destination used last (for breaker_states()).
_latest: dict[str, _Circuit] = {}
_bulkheads: dict[tuple, Bulkhead] = {}
_clients: dict[tuple, httpx.Client] = {}
_registry_lock = threading.Lock()


def _circuit(destination: str, policy: Policy) -> _Circuit:
    key = _policy_key(destination, policy)
    circuit = _circuits.get(key)
    if circuit is None:
        with _registry_lock:
            circuit = _circuits.get(key)
            if circuit is None:
                circuit = _circuits[key] = _Circuit(destination, policy)
    _latest[destination] = circuit
    return circuit


def circuit_breaker(destination: str, policy: Policy) -> pybreaker.CircuitBreaker:
    """The pybreaker breaker of ``destination`` (one per process and
    configuration; with Redis storage every process shares its state).
    Operators and tests may ``open()`` or ``close()`` it."""
    return _circuit(destination, policy).breaker


def breaker_states() -> dict[str, str]:
    """The state of the circuit of each destination this process has called:
    ``"closed"``, ``"open"`` or ``"half-open"``, as stored (in Redis when
    shared). An open circuit whose cool-down is over still reads ``"open"``
    until a call finds it so and turns it half-open."""
    return {
        destination: circuit.breaker.current_state
        for destination, circuit in sorted(_latest.items())
    }


def bulkhead(destination: str, policy: Policy) -> Bulkhead:
    """The bulkhead of ``destination`` in this process."""
    key = (destination, policy.bulkhead_max_concurrent, policy.bulkhead_max_queue)
    found = _bulkheads.get(key)
    if found is None:
        with _registry_lock:
            found = _bulkheads.get(key)
            if found is None:
                found = _bulkheads[key] = Bulkhead(
                    destination,
                    max_concurrent=policy.bulkhead_max_concurrent,
                    max_queue=policy.bulkhead_max_queue,
                )
    return found


# -- HTTP ----------------------------------------------------------------------------


def http_timeout(seconds: float, policy: Policy | None = None) -> httpx.Timeout:
    """The httpx timeout of one attempt given its ``timeout`` (what ``call``
    passes): the connect timeout, capped by it, and it for the rest."""
    policy = policy or policy_from_settings()
    return httpx.Timeout(
        seconds, connect=min(policy.connect_timeout, seconds), pool=seconds
    )


def http_client(destination: str) -> httpx.Client:
    """The pooled httpx client of ``destination`` (one per process).

    Its timeouts (connect ``RESILIENCE_CONNECT_TIMEOUT_SECONDS``, read and
    write ``RESILIENCE_TIMEOUT_SECONDS``, waiting for a pooled connection
    the connect timeout) apply when a request names none; inside ``call``,
    pass ``timeout=http_timeout(timeout)``. The pool holds as many
    connections as the bulkhead lets calls run.
    """
    policy = policy_from_settings()
    key = (destination, os.getpid())
    client = _clients.get(key)
    if client is None:
        with _registry_lock:
            client = _clients.get(key)
            if client is None:
                size = policy.bulkhead_max_concurrent
                client = _clients[key] = httpx.Client(
                    timeout=httpx.Timeout(
                        policy.timeout,
                        connect=policy.connect_timeout,
                        pool=policy.connect_timeout,
                    ),
                    # The bulkhead bounds calls in flight; a streamed answer
                    # keeps its connection after its call has left the
                    # bulkhead, so the pool itself is not bounded (waiting
                    # for it would count as the destination's failure).
                    limits=httpx.Limits(
                        max_connections=None, max_keepalive_connections=size
                    ),
                )
    return client


def _forget_after_fork() -> None:
    # Locks, pooled sockets and waiting threads belong to the parent.
    global _registry_lock
    _registry_lock = threading.Lock()
    _clients.clear()
    _bulkheads.clear()
    _circuits.clear()
    _latest.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


# -- The policy --------------------------------------------------------------------


def call(
    destination: str,
    fn: Callable[..., T],
    *args: Any,
    idempotent: bool,
    policy: Policy | None = None,
    **kwargs: Any,
) -> T:
    """Call ``fn(*args, timeout=<seconds>, **kwargs)`` under the policy.

    The call waits for a place in the destination's bulkhead, then each
    attempt passes the circuit breaker; retryable failures of idempotent
    calls are tried again after the backoff delays while the total deadline
    allows.

    Args:
        destination: names the circuit and the bulkhead.
        fn: the call; it must honour its ``timeout`` keyword.
        idempotent: only then are retryable failures retried (with
            the backoff delays); the call must carry an idempotency key.
        policy: default ``policy_from_settings()``.

    Returns what ``fn`` returns.

    Raises:
        BulkheadFull: too many calls to the destination already.
        CircuitOpen: the circuit is open (``retry_after`` says how long
            for), or this call's failure opened it.
        CallTimeout: the total deadline passed.
        Exception: the last failure of ``fn``.
    """
    policy = policy or policy_from_settings()
    deadline = time.monotonic() + policy.total_timeout
    circuit = _circuit(destination, policy)
    pool = bulkhead(destination, policy)
    pool.acquire(deadline=deadline)
    try:
        return _retrying(policy, idempotent, deadline)(
            _attempt, circuit, deadline, fn, args, kwargs
        )
    finally:
        pool.release()


def _attempt(circuit: _Circuit, deadline: float, fn, args, kwargs):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise CallTimeout(f"{circuit.destination}: no time left for an attempt")
    verdict, failures = circuit.admit()
    try:
        result = fn(*args, timeout=min(circuit.policy.timeout, remaining), **kwargs)
    except Exception as exc:  # an interrupt says nothing of the destination
        circuit.record(verdict, failures, exc)
        raise
    circuit.record(verdict, failures, None)
    return result


def _retrying(policy: Policy, idempotent: bool, deadline: float) -> tenacity.Retrying:
    delays = policy.retry_delays if idempotent else ()

    def worth_retrying(exc: BaseException) -> bool:
        return isinstance(exc, RETRYABLE) and not isinstance(exc, NOT_CALLED)

    def backoff(state: tenacity.RetryCallState) -> float:
        # Asked before the stop condition, also after the last attempt.
        number = state.attempt_number
        return delays[number - 1] if number <= len(delays) else 0.0

    def past_deadline(state: tenacity.RetryCallState) -> bool:
        return time.monotonic() + state.upcoming_sleep >= deadline

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(worth_retrying),
        wait=backoff,
        stop=tenacity.stop_after_attempt(len(delays) + 1) | past_deadline,
        sleep=policy.sleep,
        reraise=True,
    )
