from uuid import UUID

from django.db.models import QuerySet

from apps.users.interface import UserNotFound
from apps.users.models import User


def user_list() -> QuerySet[User]:
    return User.objects.order_by("created_at", "id")


def user_get(*, user_id: UUID) -> User:
    try:
        return User.objects.get(id=user_id)
    except User.DoesNotExist:
        raise UserNotFound(f"No user with id {user_id}.") from None


def user_get_visible(*, actor: User, user_id: UUID) -> User:
    """The user ``actor`` may see: themself, or anyone for staff.

    Customers get the same 404 for someone else's id as for an unknown one,
    so ids cannot be probed.
    """
    if actor.id == user_id:
        return actor
    if not actor.is_staff:
        raise UserNotFound(f"No user with id {user_id}.")
    return user_get(user_id=user_id)
