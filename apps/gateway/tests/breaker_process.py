"""A separate process that calls one destination through the resilience
policy (the circuit's state shared through Redis), for
test_resilience.py's cross-process tests.

    python -m apps.gateway.tests.breaker_process DESTINATION fail N
        N calls that fail with ConnectionError, one after the other
    python -m apps.gateway.tests.breaker_process DESTINATION trials N LOG GO
        N concurrent calls; each admitted one appends "started" to LOG and
        waits for the file GO, then succeeds; a rejected one appends
        "rejected"

Prints a JSON list: the outcome of each call (its exception's class name,
or "ok") and, for CircuitOpen, its retry_after.
"""

import json
import os
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django  # noqa: E402

django.setup()

from apps.gateway import resilience  # noqa: E402


def outcome(fn) -> dict:
    try:
        resilience.call(DESTINATION, fn, idempotent=False)
    except resilience.CircuitOpen as exc:
        return {"outcome": "CircuitOpen", "retry_after": exc.retry_after}
    except (ConnectionError, resilience.RetryableError) as exc:
        return {"outcome": type(exc).__name__}
    return {"outcome": "ok"}


def log(path: Path, line: str) -> None:
    with path.open("a") as file:
        file.write(line + "\n")


def down(*, timeout):
    raise ConnectionError("down")


if __name__ == "__main__":
    DESTINATION, mode, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    results: list[dict] = []
    if mode == "fail":
        results = [outcome(down) for _ in range(count)]
    else:
        log_path, go = Path(sys.argv[4]), Path(sys.argv[5])

        def trial(*, timeout):
            log(log_path, "started")
            deadline = time.monotonic() + 30
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            return "ok"

        def one() -> None:
            result = outcome(trial)
            if result["outcome"] == "CircuitOpen":
                log(log_path, "rejected")
            results.append(result)

        threads = [threading.Thread(target=one) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    print(json.dumps(results))
