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


class InvalidInput(DomainError):
    """Input that passed parsing but breaks a domain rule, per field."""

    code = "validation_error"
    title = "Invalid input"

    def __init__(self, errors: dict[str, list[str]], detail: str | None = None):
        self.errors = errors
        super().__init__(detail or "The request has invalid fields.")


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
