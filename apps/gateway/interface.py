"""The gateway's service interface for the contexts.

- ``Principal``: who an authenticated request comes from, as the gateway
  read it from the access token (``request.principal``; ``request.user`` in
  DRF views). No database row stands behind it.
- ``user_tokens_revoke``: revoke every access token of a user issued until
  now (password change, deactivation, deletion, logout everywhere); every
  process refuses them from its next request (ADR 0017).
- ``resilient_call`` (and its errors): the one resilience policy for a
  call that leaves the process, e.g. to a payment provider (ADR 0020).
- ``ContextBinding``: how a context's interface runs in this process or
  against another deployment of that context, by settings (ADR 0025);
  ``ContextUnavailable`` (503) when that deployment cannot answer now.
"""

from dataclasses import dataclass
from uuid import UUID

from django.db import transaction

from apps.gateway.bindings import ContextBinding, RemoteError, context_mode
from apps.gateway.remote import ContextUnavailable
from apps.gateway.resilience import (
    RETRYABLE,
    CallTimeout,
    CircuitOpen,
    RetryableError,
)
from apps.gateway.resilience import call as resilient_call

__all__ = [
    "RETRYABLE",
    "CallTimeout",
    "CircuitOpen",
    "ContextBinding",
    "ContextUnavailable",
    "Principal",
    "RemoteError",
    "RetryableError",
    "context_mode",
    "resilient_call",
    "user_tokens_revoke",
]


@dataclass(frozen=True)
class Principal:
    """The caller of an authenticated request, from its access token's
    claims: what authorization needs, and nothing read from a database."""

    id: UUID
    email: str
    is_staff: bool
    is_superuser: bool

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    @property
    def pk(self) -> UUID:
        return self.id


def user_tokens_revoke(*, user_id: UUID, using: str | None = None) -> None:
    """Revoke every access token of ``user_id`` issued until now.

    Written when the transaction on the ``using`` alias commits (at once
    outside one), so that a rolled-back change revokes nothing and a token
    issued before the commit is always covered. Takes effect on the next
    request in this process, within GATEWAY_REVOCATION_CACHE_SECONDS in the
    others; with the revocation store unreachable, only when the tokens
    expire (logged; ADR 0017).
    """
    from apps.gateway import revocation

    transaction.on_commit(lambda: revocation.revoke(user_id), using=using)
