"""What the users context deletes once past its retention (ADR 0030)."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.core.retention import retention_delete_batched, retention_log
from apps.users.models import RefreshTokenFamily


def refresh_token_families_prune(*, dry_run: bool = False) -> int:
    """Delete the refresh token families none of whose tokens can still be
    used: revoked, or whose latest token was issued, more than the refresh
    lifetime (plus leeway and USERS_REFRESH_FAMILY_RETENTION_SECONDS) ago.

    A refresh token whose family row is gone is refused, like a revoked
    one. Families from before ``last_issued_at`` go only once revoked.
    Returns how many (would be) deleted.
    """
    jwt = settings.SIMPLE_JWT
    leeway = jwt.get("LEEWAY", 0)
    if not isinstance(leeway, timedelta):
        leeway = timedelta(seconds=leeway)
    cutoff = (
        timezone.now()
        - jwt["REFRESH_TOKEN_LIFETIME"]
        - leeway
        - timedelta(seconds=settings.USERS_REFRESH_FAMILY_RETENTION_SECONDS)
    )
    spent = RefreshTokenFamily.objects.filter(
        Q(revoked_at__lt=cutoff) | Q(last_issued_at__lt=cutoff)
    )
    return retention_delete_batched(spent, dry_run=dry_run)


def users_prune_retained(*, dry_run: bool = False) -> dict[str, int]:
    """Prune the users context's tables; return rows (would be) deleted
    per table."""
    counts = {"users_refreshtokenfamily": refresh_token_families_prune(dry_run=dry_run)}
    retention_log("users", counts, dry_run=dry_run)
    return counts
