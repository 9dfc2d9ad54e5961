from uuid import UUID

from django.db.models import QuerySet

from apps.gateway.interface import Principal
from apps.users.errors import UserNotFound
from apps.users.models import RefreshTokenFamily, User


def user_list() -> QuerySet[User]:
    return User.objects.order_by("created_at", "id")


def user_get(*, user_id: UUID) -> User:
    try:
        return User.objects.get(id=user_id)
    except User.DoesNotExist:
        raise UserNotFound(f"No user with id {user_id}.") from None


def user_check_visible(*, actor: Principal, user_id: UUID) -> None:
    """Raise UserNotFound unless ``actor`` may see the user ``user_id``:
    themself, or anyone for staff.

    Customers get the same 404 for someone else's id as for an unknown one,
    so ids cannot be probed. The actor is the gateway's principal (no row):
    this reads nothing, and runs on every request, cached profile or not.
    """
    if actor.id != user_id and not actor.is_staff:
        raise UserNotFound(f"No user with id {user_id}.")


def user_get_visible(*, actor: Principal, user_id: UUID) -> User:
    """The user ``actor`` may see (``user_check_visible``), read here."""
    user_check_visible(actor=actor, user_id=user_id)
    return user_get(user_id=user_id)


def refresh_token_family_is_active(*, family_id: UUID | str) -> bool:
    """Whether the refresh tokens of this family may still rotate."""
    return RefreshTokenFamily.objects.filter(
        id=family_id, revoked_at__isnull=True
    ).exists()
