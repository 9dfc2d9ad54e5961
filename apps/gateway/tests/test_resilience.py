"""The resilience policy: retries with backoff for idempotent calls only
within a total deadline, and a circuit breaker per destination (opens after
5 failures, half-open lets exactly 3 trials through) shared between real
processes through the real Redis."""

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings

from apps.gateway import resilience
from apps.gateway.resilience import (
    BulkheadFull,
    CallTimeout,
    CircuitOpen,
    Policy,
)
from apps.gateway.tests.servers import TinyServer
from tests.polling import poll

REDIS_URL = "redis://127.0.0.1:6379/5"
BASE_DIR = Path(settings.BASE_DIR)


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


class Pauses(list):
    """Records the pauses between attempts instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def destination() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def shared_destination():
    """A destination whose circuit lives in Redis (DB 5), removed after."""
    name = destination()
    yield name
    # Reading its state again would write the keys back.
    resilience._latest.pop(name, None)
    client = redis.Redis.from_url(REDIS_URL)
    keys = client.keys(f"circuit:{name}:*")
    if keys:
        client.delete(*keys)


# -- Retries ----------------------------------------------------------------------


def test_idempotent_call_is_retried_after_100_200_400_ms():
    pauses = Pauses()
    policy = Policy(timeout=0.5, total_timeout=2.0, sleep=pauses)
    fn = Flaky(3, resilience.RetryableError("503"))

    assert resilience.call(destination(), fn, idempotent=True, policy=policy) == "ok"

    assert fn.calls == 4
    assert pauses == [0.1, 0.2, 0.4]
    assert fn.timeouts[0] == 0.5  # each attempt is told its timeout


def test_retry_delays_come_from_settings(settings):
    settings.RESILIENCE_RETRY_DELAYS_MS = [10, 30]
    pauses = Pauses()
    policy = dataclasses.replace(resilience.policy_from_settings(), sleep=pauses)
    fn = Flaky(10, ConnectionError("reset"))

    with pytest.raises(ConnectionError):
        resilience.call(destination(), fn, idempotent=True, policy=policy)

    assert pauses == [0.01, 0.03]
    assert fn.calls == 3


def test_gives_up_after_the_last_backoff_delay():
    pauses = Pauses()
    fn = Flaky(10, ConnectionError("reset"))

    with pytest.raises(ConnectionError):
        resilience.call(destination(), fn, idempotent=True, policy=Policy(sleep=pauses))

    assert fn.calls == 4  # the first attempt and three retries
    assert pauses == [0.1, 0.2, 0.4]


def test_non_idempotent_call_is_not_retried():
    pauses = Pauses()
    fn = Flaky(1, resilience.RetryableError("503"))

    with pytest.raises(resilience.RetryableError):
        resilience.call(
            destination(), fn, idempotent=False, policy=Policy(sleep=pauses)
        )

    assert fn.calls == 1
    assert pauses == []


def test_business_errors_are_neither_retried_nor_counted():
    policy = Policy(retry_delays=(0.01,), breaker_fail_max=2)
    name = destination()
    for _ in range(5):
        fn = Flaky(1, ValueError("declined"))
        with pytest.raises(ValueError):
            resilience.call(name, fn, idempotent=True, policy=policy)
        assert fn.calls == 1

    assert resilience.breaker_states()[name] == "closed"


def test_no_retry_whose_pause_would_end_past_the_deadline():
    pauses = Pauses()
    policy = Policy(total_timeout=0.15, retry_delays=(0.2, 0.2), sleep=pauses)
    fn = Flaky(10, ConnectionError("reset"))

    with pytest.raises(ConnectionError):
        resilience.call(destination(), fn, idempotent=True, policy=policy)

    assert fn.calls == 1
    assert pauses == []


def test_total_deadline_bounds_all_attempts():
    """A callee that spends its whole timeout each time: the attempts are
    given what is left of the 0.35 s, and the call ends by then."""
    policy = Policy(timeout=0.2, total_timeout=0.35, retry_delays=(0.01,) * 5)

    def slow(*, timeout):
        slow.timeouts.append(timeout)
        time.sleep(timeout)  # the callee honours its timeout, then fails
        raise TimeoutError("slow")

    slow.timeouts = []

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        resilience.call(destination(), slow, idempotent=True, policy=policy)
    elapsed = time.monotonic() - started

    assert elapsed < 0.8  # six 0.2 s attempts unbounded: 1.2 s
    assert slow.timeouts[0] == 0.2
    assert 1 < len(slow.timeouts) <= 3
    assert slow.timeouts[-1] < 0.2  # the last attempt got only what was left


# -- Circuit breaker ---------------------------------------------------------------


def open_circuit(name: str, policy: Policy) -> None:
    fn = Flaky(100, ConnectionError("down"))
    for _ in range(policy.breaker_fail_max):
        with pytest.raises((ConnectionError, CircuitOpen)):
            resilience.call(name, fn, idempotent=False, policy=policy)


def cool_down_passed(name: str, policy: Policy) -> None:
    """As if the cool-down had passed: the circuit was opened longer ago."""
    storage = resilience._circuit(name, policy).storage
    storage.opened_at = datetime.now(UTC) - timedelta(
        seconds=policy.breaker_reset_timeout + 1
    )


def test_breaker_opens_after_5_failures_and_then_fails_fast():
    policy = Policy(retry_delays=(), breaker_fail_max=5, breaker_reset_timeout=60)
    name = destination()
    fn = Flaky(100, ConnectionError("down"))
    for _ in range(4):
        with pytest.raises(ConnectionError):
            resilience.call(name, fn, idempotent=True, policy=policy)

    with pytest.raises(CircuitOpen):  # the fifth failure opens it
        resilience.call(name, fn, idempotent=True, policy=policy)
    started = time.monotonic()
    with pytest.raises(CircuitOpen) as rejected:
        resilience.call(name, fn, idempotent=True, policy=policy)

    assert time.monotonic() - started < 0.5
    assert fn.calls == 5  # the open circuit called nothing
    assert 59 < rejected.value.retry_after <= 60
    assert resilience.breaker_states()[name] == "open"


def test_failures_count_only_in_a_row():
    policy = Policy(retry_delays=(), breaker_fail_max=5)
    name = destination()
    for _ in range(3):
        open_circuit_partly = Flaky(100, ConnectionError("down"))
        for _ in range(4):
            with pytest.raises(ConnectionError):
                resilience.call(
                    name, open_circuit_partly, idempotent=False, policy=policy
                )
        assert resilience.call(name, Flaky(0, None), idempotent=False, policy=policy)

    assert resilience.breaker_states()[name] == "closed"


def test_half_open_lets_exactly_3_trials_through_and_closes_after_them():
    policy = Policy(retry_delays=(), breaker_reset_timeout=60)
    name = destination()
    open_circuit(name, policy)
    cool_down_passed(name, policy)
    go, started, outcomes = threading.Event(), [], []

    def trial(*, timeout):
        started.append(1)
        go.wait(10)
        return "ok"

    def caller():
        try:
            outcomes.append(
                resilience.call(name, trial, idempotent=True, policy=policy)
            )
        except CircuitOpen as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(5)]
    for thread in threads:
        thread.start()
    poll(lambda: len(started) == 3 and len(outcomes) == 2, message="3 trials, 2 out")

    assert all(isinstance(o, CircuitOpen) for o in outcomes)
    assert all(o.retry_after > 0 for o in outcomes)
    assert resilience.breaker_states()[name] == "half-open"
    go.set()
    for thread in threads:
        thread.join()

    assert outcomes[2:] == ["ok", "ok", "ok"]
    assert resilience.breaker_states()[name] == "closed"
    assert resilience.call(name, trial, idempotent=True, policy=policy) == "ok"


def test_a_failing_trial_opens_the_circuit_again():
    policy = Policy(retry_delays=(), breaker_reset_timeout=60)
    name = destination()
    open_circuit(name, policy)
    cool_down_passed(name, policy)

    with pytest.raises(CircuitOpen) as reopened:
        resilience.call(
            name,
            Flaky(1, ConnectionError("still down")),
            idempotent=True,
            policy=policy,
        )

    assert reopened.value.retry_after == 60
    assert resilience.breaker_states()[name] == "open"
    with pytest.raises(CircuitOpen):
        resilience.call(name, Flaky(0, None), idempotent=True, policy=policy)


def run_process(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "apps.gateway.tests.breaker_process", *args],
        cwd=BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "CIRCUIT_BREAKER_REDIS_URL": REDIS_URL,
            **env,
        },
        stdout=subprocess.PIPE,
        text=True,
    )


def results(process: subprocess.Popen) -> list[dict]:
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    return json.loads(out)


def test_the_circuit_is_shared_by_processes_through_redis(shared_destination, tmp_path):
    """One process opens the circuit; another is refused at once; once the
    cool-down is over, two processes with 3 callers each get exactly 3
    trials between them, and their success closes it for everyone."""
    name = shared_destination

    opened = results(run_process(name, "fail", "5"))
    assert [r["outcome"] for r in opened] == ["ConnectionError"] * 4 + ["CircuitOpen"]

    refused = results(run_process(name, "fail", "1"))
    assert refused[0]["outcome"] == "CircuitOpen"  # nothing was called
    assert 50 < refused[0]["retry_after"] <= 60
    policy = Policy(breaker_redis_url=REDIS_URL)
    assert resilience.circuit_breaker(name, policy).current_state == "open"

    # The cool-down passes (opened_at is epoch seconds in pybreaker's keys).
    redis.Redis.from_url(REDIS_URL).set(
        f"circuit:{name}:pybreaker:opened_at", int(time.time()) - 61
    )
    log, go = tmp_path / "log", tmp_path / "go"
    log.touch()
    trials = [run_process(name, "trials", "3", str(log), str(go)) for _ in range(2)]
    poll(lambda: len(log.read_text().split()) == 6, message="6 callers decided")

    assert sorted(log.read_text().split()) == ["rejected"] * 3 + ["started"] * 3
    go.touch()
    outcomes = [r["outcome"] for p in trials for r in results(p)]
    assert sorted(outcomes) == ["CircuitOpen"] * 3 + ["ok"] * 3
    assert resilience.circuit_breaker(name, policy).current_state == "closed"
    assert results(run_process(name, "fail", "1"))[0]["outcome"] == "ConnectionError"


def test_breaker_state_survives_a_fresh_process_memory(shared_destination):
    policy = Policy(retry_delays=(), breaker_fail_max=2, breaker_redis_url=REDIS_URL)
    open_circuit(shared_destination, policy)
    resilience._circuits.clear()  # a fresh process knows only Redis

    with pytest.raises(CircuitOpen):
        resilience.call(
            shared_destination, Flaky(0, None), idempotent=True, policy=policy
        )


def test_an_unreachable_redis_reads_as_a_closed_circuit():
    policy = Policy(retry_delays=(), breaker_redis_url="redis://127.0.0.1:1/0")

    assert resilience.call(
        destination(), Flaky(0, None), idempotent=False, policy=policy
    )


# -- HTTP -------------------------------------------------------------------------


def test_one_pooled_http_client_per_destination_with_the_settings_timeouts():
    client = resilience.http_client("payments-http")

    assert resilience.http_client("payments-http") is client
    assert resilience.http_client("shipping-http") is not client
    assert client.timeout.connect == 2.0
    assert client.timeout.read == 5.0
    assert client.timeout.write == 5.0
    assert resilience.http_timeout(0.5).connect == 0.5
    assert resilience.http_timeout(4).connect == 2.0


def test_a_remote_call_over_http_is_retried_through_5xx_answers():
    server = TinyServer("instance").start()
    server.status = 503
    pauses = Pauses()

    def get(*, timeout):
        client = resilience.http_client("tiny-http")
        response = client.get(
            f"{server.url}/x", timeout=resilience.http_timeout(timeout)
        )
        if response.status_code >= 500:
            server.status = 200  # the next attempt finds it back
            raise resilience.RetryableError(str(response.status_code))
        return response.text

    try:
        answer = resilience.call(
            destination(), get, idempotent=True, policy=Policy(sleep=pauses)
        )
    finally:
        server.stop()

    assert answer == "instance"
    assert server.requests == ["/x", "/x"]
    assert pauses == [0.1]


def test_a_refused_connection_is_retried_and_counted():
    server = TinyServer().start()
    url = server.url
    server.stop()  # nothing listens on its port now
    policy = Policy(breaker_fail_max=4, sleep=Pauses())
    name = destination()

    def get(*, timeout):
        return resilience.http_client(name).get(
            url, timeout=resilience.http_timeout(timeout)
        )

    with pytest.raises(CircuitOpen):  # 4 attempts: the fourth failure opens it
        resilience.call(name, get, idempotent=True, policy=policy)
    assert resilience.breaker_states()[name] == "open"


def test_bulkhead_rejections_are_not_retried():
    pauses = Pauses()
    name = destination()
    policy = Policy(bulkhead_max_concurrent=1, bulkhead_max_queue=0, sleep=pauses)
    pool = resilience.bulkhead(name, policy)
    pool.acquire()  # the one place is taken
    try:
        with pytest.raises(BulkheadFull):
            resilience.call(name, Flaky(0, None), idempotent=True, policy=policy)
    finally:
        pool.release()
    assert pauses == []


def test_call_timeout_is_a_timeout_error():
    assert issubclass(CallTimeout, TimeoutError)
