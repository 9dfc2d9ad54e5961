"""The resilience policy: retries for idempotent calls only, timeouts, and a
circuit breaker per destination shared through the real Redis."""

import time
import uuid

import pytest

from apps.gateway import resilience
from apps.gateway.resilience import CallTimeout, CircuitOpen, Policy

FAST = Policy(timeout=0.5, total_timeout=2.0, retry_delays=(0.01, 0.02, 0.04))


class Flaky:
    """Fails with ``error`` the first ``failures`` calls, then answers."""

    def __init__(self, failures: int, error: Exception):
        self.failures, self.error, self.calls, self.timeouts = failures, error, 0, []

    def __call__(self, *, timeout):
        self.calls += 1
        self.timeouts.append(timeout)
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def destination() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


def test_idempotent_call_is_retried_after_transient_failures():
    fn = Flaky(3, resilience.RetryableError("503"))

    assert resilience.call(destination(), fn, idempotent=True, policy=FAST) == "ok"
    assert fn.calls == 4
    assert fn.timeouts[0] == 0.5


def test_gives_up_after_the_last_backoff_delay():
    fn = Flaky(10, ConnectionError("reset"))

    with pytest.raises(ConnectionError):
        resilience.call(destination(), fn, idempotent=True, policy=FAST)
    assert fn.calls == 4  # the first attempt and three retries


def test_non_idempotent_call_is_not_retried():
    fn = Flaky(1, resilience.RetryableError("503"))

    with pytest.raises(resilience.RetryableError):
        resilience.call(destination(), fn, idempotent=False, policy=FAST)
    assert fn.calls == 1


def test_business_errors_are_neither_retried_nor_counted():
    policy = Policy(retry_delays=(0.01,), breaker_fail_max=2)
    name = destination()
    for _ in range(5):
        fn = Flaky(1, ValueError("declined"))
        with pytest.raises(ValueError):
            resilience.call(name, fn, idempotent=True, policy=policy)
        assert fn.calls == 1
    assert resilience.circuit_breaker(name, policy).current_state == "closed"


def test_total_deadline_bounds_all_attempts():
    policy = Policy(timeout=1, total_timeout=0.15, retry_delays=(0.1, 0.1, 0.1))

    def slow(*, timeout):
        time.sleep(0.1)
        raise TimeoutError("slow")

    started = time.monotonic()
    with pytest.raises((TimeoutError, CallTimeout)):
        resilience.call(destination(), slow, idempotent=True, policy=policy)
    assert time.monotonic() - started < 0.5


def test_breaker_opens_after_fail_max_and_fails_fast():
    policy = Policy(retry_delays=(), breaker_fail_max=5, breaker_reset_timeout=60)
    name = destination()
    fn = Flaky(100, ConnectionError("down"))
    for _ in range(4):
        with pytest.raises(ConnectionError):
            resilience.call(name, fn, idempotent=True, policy=policy)

    with pytest.raises(CircuitOpen):  # the fifth failure opens it
        resilience.call(name, fn, idempotent=True, policy=policy)
    with pytest.raises(CircuitOpen):
        resilience.call(name, fn, idempotent=True, policy=policy)
    assert fn.calls == 5


def test_breaker_state_is_shared_through_redis():
    url = "redis://127.0.0.1:6379/1"
    name = destination()
    policy = Policy(retry_delays=(), breaker_fail_max=2, breaker_redis_url=url)
    fn = Flaky(100, ConnectionError("down"))
    for _ in range(2):
        with pytest.raises((ConnectionError, CircuitOpen)):
            resilience.call(name, fn, idempotent=True, policy=policy)
    resilience._breakers.clear()  # a fresh process knows only Redis

    with pytest.raises(CircuitOpen):
        resilience.call(name, Flaky(0, ValueError()), idempotent=True, policy=policy)
