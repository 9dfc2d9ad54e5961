"""The gateway's errors: why a call that leaves the process was not made or
did not succeed. Callers at the HTTP edge map ``CircuitOpen``,
``BulkheadFull`` and ``NoHealthyInstance`` to 503 (with ``Retry-After``
from ``CircuitOpen.retry_after``); the saga engine treats every
``RetryableError`` as transient.
"""


class RetryableError(Exception):
    """A failure another attempt may not meet (a 5xx, a dropped connection).

    Raise it (or a subclass) from a callee for what is worth retrying;
    anything else is the caller's business and is neither retried nor
    counted by the circuit breaker.
    """


class CallTimeout(RetryableError, TimeoutError):
    """The call (or all its attempts together) took longer than allowed."""


class CircuitOpen(RetryableError):
    """The destination's circuit is open (or its half-open trial calls are
    all taken): the call was not made.

    ``retry_after`` is how many seconds remain until the circuit lets a
    trial call through (round it up for a ``Retry-After`` header).
    """

    def __init__(self, destination: str, retry_after: float = 0.0):
        self.destination = destination
        self.retry_after = max(float(retry_after), 0.0)
        super().__init__(
            f"The circuit to {destination} is open"
            f" (retry after {self.retry_after:.1f} s)."
        )


class BulkheadFull(RetryableError):
    """The destination already has as many calls running and waiting as its
    bulkhead allows: the call was rejected at once, not made."""

    def __init__(self, destination: str):
        self.destination = destination
        super().__init__(f"Too many calls to {destination} at once.")


class NoHealthyInstance(RetryableError):
    """No instance of a remote context is healthy (or every healthy one was
    excluded): nothing to send the call to."""

    def __init__(self, context: str):
        self.context = context
        super().__init__(f"No healthy instance of {context}.")
