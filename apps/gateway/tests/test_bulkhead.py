"""The bulkhead under real concurrency: 10 calls run, 20 wait, the rest are
rejected at once, and a waiter gives up at its call's deadline."""

import threading
import time
import uuid

import pytest

from apps.gateway import resilience
from apps.gateway.resilience import BulkheadFull, CallTimeout, Policy
from tests.polling import poll


def test_40_callers_10_run_20_wait_10_are_rejected_at_once_then_all_waiters_run():
    name = f"test-{uuid.uuid4().hex[:8]}"
    policy = Policy(total_timeout=30, breaker_fail_max=5)
    release = threading.Event()
    lock = threading.Lock()
    running = {"now": 0, "most": 0}
    outcomes: list[str] = []

    def blocking(*, timeout):
        with lock:
            running["now"] += 1
            running["most"] = max(running["most"], running["now"])
        release.wait(20)
        with lock:
            running["now"] -= 1
        return "ok"

    def caller():
        started = time.monotonic()
        try:
            outcomes.append(
                resilience.call(name, blocking, idempotent=True, policy=policy)
            )
        except BulkheadFull:
            outcomes.append(f"rejected after {time.monotonic() - started:.2f}")

    threads = [threading.Thread(target=caller) for _ in range(40)]
    for thread in threads:
        thread.start()
    pool = resilience.bulkhead(name, policy)
    poll(
        lambda: pool.running == 10 and pool.waiting == 20 and len(outcomes) == 10,
        message="10 running, 20 waiting, 10 rejected",
    )

    assert running["now"] == 10
    assert all(o.startswith("rejected") for o in outcomes)
    assert all(float(o.split()[-1]) < 1 for o in outcomes)  # at once
    release.set()
    for thread in threads:
        thread.join()

    assert outcomes.count("ok") == 30
    assert running["most"] == 10
    assert pool.running == pool.waiting == 0
    # Rejections say nothing about the destination: the circuit is closed.
    assert resilience.breaker_states()[name] == "closed"


def test_a_waiter_gives_up_at_its_calls_deadline():
    pool = resilience.Bulkhead("test", max_concurrent=1, max_queue=5)
    pool.acquire()

    started = time.monotonic()
    with pytest.raises(CallTimeout):
        pool.acquire(deadline=time.monotonic() + 0.2)

    assert 0.2 <= time.monotonic() - started < 1
    assert pool.waiting == 0
    pool.release()
    pool.acquire(deadline=time.monotonic() + 0.2)  # the place is free again


def test_a_place_freed_goes_to_the_waiter_not_a_newcomer():
    pool = resilience.Bulkhead("test", max_concurrent=1, max_queue=1)
    pool.acquire()
    waiter = threading.Thread(target=pool.acquire, kwargs={"deadline": None})
    waiter.start()
    poll(lambda: pool.waiting == 1, message="the waiter queued")

    pool.release()
    # Whether or not the waiter has woken yet, the newcomer does not get in.
    with pytest.raises((BulkheadFull, CallTimeout)):
        pool.acquire(deadline=time.monotonic() + 0.05)
    waiter.join(5)

    assert not waiter.is_alive()
    assert pool.running == 1 and pool.waiting == 0
