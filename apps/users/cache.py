"""Users' profiles (``GET /api/v1/users/<id>``) cached under per-user
generation tokens, so that no write leaves one stale (ADR 0031; the
protocol is ``apps.core.generations``, the catalog's, ADR 0026).

Keys: ``users:user:<uuid>:gen``, a random token, and ``...:entry``,
``(token, body)``, the rendered JSON the read answers. Every write of a
user row kills its token after the statement and again on commit: saves
and deletes through the model's signals (``apps.users.apps``), so the
admin, Django's auth (a password rehash, ``last_login``) and the
services alike; ``UserQuerySet.update`` for bulk updates. Only the row's
representation is cached: who may see it is decided per request.
"""

from collections.abc import Callable, Iterable
from uuid import UUID

from django.conf import settings

from apps.core import generations

PREFIX = "users:user:"
# Names the cache in what is logged when it fails.
_WHAT = "users"


def _keys(user_id: UUID | str) -> tuple[str, str]:
    name = str(UUID(str(user_id)))  # one spelling per user
    return f"{PREFIX}{name}:gen", f"{PREFIX}{name}:entry"


def cached_profile(user_id: UUID, load: Callable[[], bytes | None]) -> bytes | None:
    """The body ``load()`` renders for this user, from the cache when the
    user's generation is current; None (no such user) is not cached. When
    the cache fails, ``load()`` answers alone."""
    gen_key, entry_key = _keys(user_id)
    return generations.cached(
        gen_key, entry_key, settings.USERS_PROFILE_CACHE_SECONDS, load, what=_WHAT
    )


def forget(user_ids: Iterable[UUID | str]) -> None:
    """Make the cached profiles of these users dead, in one round trip."""
    generations.kill(
        [key for user_id in user_ids for key in _keys(user_id)], what=_WHAT
    )


def changed(*user_ids: UUID | str, using: str) -> None:
    """These users' rows were written on database ``using``: their cached
    profiles are dead now and again when the enclosing transaction
    commits."""
    ids = list(user_ids)
    if ids:
        generations.dead_now_and_on_commit(lambda: forget(ids), using=using)


def user_saved_or_deleted(sender, instance, using, **kwargs) -> None:
    """The receiver of User's post_save and post_delete: every save and
    delete, whoever makes it, kills the user's cached profile."""
    changed(instance.pk, using=using)


def forget_all() -> None:
    """Drop every cached profile: after the users' database is restored
    from a backup, and between tests."""
    generations.delete_prefixed((PREFIX,))
