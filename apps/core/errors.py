"""Domain errors: a machine code, an HTTP status and data for the client.

Contexts subclass these in their interface.py; one handler
(apps.core.problems) turns them into RFC 9457 problem details.
"""

from typing import Any


class DomainError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str | None = None, **data: Any):
        self.detail = detail or self.title
        self.data = data
        super().__init__(self.detail)

    # Crossing a process (a context in its own deployment answers through
    # apps.gateway.internal): the error travels as its class name, detail
    # and data, and comes back as the same class.

    def to_remote(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "detail": self.detail, "data": self.data}

    @classmethod
    def from_remote(cls, detail: str, data: dict[str, Any]) -> "DomainError":
        """Rebuild an error sent by ``to_remote``; subclasses whose
        attributes are typed (not plain JSON) override it."""
        error = cls.__new__(cls)
        Exception.__init__(error, detail)
        error.detail = detail
        error.data = data
        for name, value in data.items():  # IllegalTransition.current_status
            if not hasattr(cls, name):
                setattr(error, name, value)
        return error


class ErrorMessage(str):
    """A message for one field that carries the machine code of its rule.

    A plain ``str`` in ``InvalidInput.errors`` reaches the client with the
    code ``invalid``; an ErrorMessage keeps its own (``password_too_short``).
    """

    code: str

    def __new__(cls, message: str, code: str = "invalid") -> "ErrorMessage":
        instance = super().__new__(cls, message)
        instance.code = code
        return instance


class InvalidInput(DomainError):
    """Input that passed parsing but breaks a domain rule, per field."""

    code = "validation_error"
    title = "Invalid input"

    def __init__(self, errors: dict[str, list[str]], detail: str | None = None):
        self.errors = errors
        super().__init__(detail or "The request has invalid fields.")

    @classmethod
    def from_validation_error(
        cls, exc: Any, field: str = "", detail: str | None = None
    ) -> "InvalidInput":
        """Translate a Django ValidationError, keeping each error's code.

        Errors not tied to a field (a validator's list) go under ``field``.
        """
        if hasattr(exc, "error_dict"):
            groups = exc.error_dict.items()
        else:
            groups = [(field, exc.error_list)]
        errors = {
            name: [
                # Iterating one error yields its message with its params.
                ErrorMessage(next(iter(error)), error.code or "invalid")
                for error in group
            ]
            for name, group in groups
        }
        return cls(errors, detail)

    def to_remote(self) -> dict[str, Any]:
        errors = {
            name: [[str(m), getattr(m, "code", "invalid")] for m in messages]
            for name, messages in self.errors.items()
        }
        return {**super().to_remote(), "data": {"errors": errors}}

    @classmethod
    def from_remote(cls, detail: str, data: dict[str, Any]) -> "InvalidInput":
        errors = {
            name: [ErrorMessage(message, code) for message, code in messages]
            for name, messages in data.get("errors", {}).items()
        }
        return cls(errors, detail)


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"
    title = "Permission denied"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(DomainError):
    status = 412
    code = "precondition_failed"
    title = "Precondition failed"


class AuthenticationFailed(DomainError):
    status = 401
    code = "authentication_failed"
    title = "Authentication failed"


class ServiceUnavailable(DomainError):
    """A context in another deployment cannot be reached now (its circuit
    is open, every instance is down, or its bulkhead is full): try again
    after ``retry_after`` seconds (the answer's Retry-After)."""

    status = 503
    code = "service_unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 1, **data):
        self.retry_after = max(1, int(retry_after))
        super().__init__(detail, **data)
