"""Circuit breakers' state for Prometheus (apps/core/metrics.py, ADR 0023).

``shop_circuit_breaker_state{destination}``: 0 closed, 1 open, 2 half-open.
A breaker reports its state at its first call in each process and at every
change it makes or notices (with the state shared in Redis, a process
notices another's change at its next call). Across processes the value
last written wins ("mostrecent").
"""

import pybreaker
from prometheus_client import Gauge

BREAKER_STATE = Gauge(
    "shop_circuit_breaker_state",
    "Circuit breaker state by destination: 0 closed, 1 open, 2 half-open.",
    ["destination"],
    multiprocess_mode="mostrecent",
)
STATE_CODES = {
    pybreaker.STATE_CLOSED: 0,
    pybreaker.STATE_OPEN: 1,
    pybreaker.STATE_HALF_OPEN: 2,
}


_last: dict[str, int] = {}


def breaker_state_seen(destination: str, state: str) -> None:
    """Report ``state`` (a pybreaker state name) of ``destination``'s
    circuit as this process found it deciding a call (the half-open state
    is decided in the shared storage, not through pybreaker's transitions)."""
    code = STATE_CODES[state]
    if _last.get(destination) != code:
        _last[destination] = code
        BREAKER_STATE.labels(destination=destination).set(code)


class BreakerStateListener(pybreaker.CircuitBreakerListener):
    """Registered on each breaker when it is created."""

    def __init__(self):
        self._reported = False

    def _report(self, cb: pybreaker.CircuitBreaker, state: str) -> None:
        breaker_state_seen(cb.name or "", state)

    def before_call(self, cb, func, *args, **kwargs) -> None:
        if not self._reported:
            self._reported = True
            self._report(cb, cb.current_state)

    def state_change(self, cb, old_state, new_state) -> None:
        self._reported = True
        self._report(cb, new_state.name)
