"""The users context's service interface for other contexts.

Returns frozen DTOs, never model instances.
"""

from dataclasses import dataclass
from uuid import UUID

from apps.gateway.interface import ContextBinding
from apps.users import selectors
from apps.users.errors import EmailAlreadyRegistered, UserNotFound

__all__ = [
    "EmailAlreadyRegistered",
    "UserDTO",
    "UserNotFound",
    "get_user",
    "get_users",
]


@dataclass(frozen=True)
class UserDTO:
    id: UUID
    email: str
    name: str
    is_active: bool
    is_staff: bool

    @classmethod
    def from_model(cls, user) -> "UserDTO":
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            is_active=user.is_active,
            is_staff=user.is_staff,
        )


# Local or remote by settings.CONTEXTS["users"] (apps.gateway.bindings).
binding = ContextBinding("users", errors=(UserNotFound, EmailAlreadyRegistered))


@binding.expose(idempotent=True)
def get_user(user_id: UUID) -> UserDTO:
    """Return the user with ``user_id``.

    Raises:
        UserNotFound: no such user.
    """
    return UserDTO.from_model(selectors.user_get(user_id=user_id))


@binding.expose(idempotent=True)
def get_users(user_ids: list[UUID]) -> dict[UUID, UserDTO]:
    """Return the users among ``user_ids`` that exist, keyed by id."""
    return {
        user.id: UserDTO.from_model(user)
        for user in selectors.user_list().filter(id__in=user_ids)
    }


def published_jwks() -> list[dict[str, str]]:
    """The public keys (JWK dicts, each with its ``kid``) that verify the
    access tokens this context issues: what /.well-known/jwks.json serves."""
    from apps.users import tokens

    return tokens.published_jwks()
