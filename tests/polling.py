"""Waiting for asynchronous work in tests: poll with a deadline, no sleeps."""

import time


def poll(predicate, *, timeout=30.0, interval=0.05, message="condition"):
    """Wait until ``predicate()`` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message}")
