from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.utils import timezone

from apps.users.models import RefreshTokenFamily
from apps.users.retention import users_prune_retained
from apps.users.tasks import users_prune_retained_task
from tests.problems import assert_problem

pytestmark = pytest.mark.django_db

REFRESH = "/api/v1/users/token/refresh"


def _family_of(refresh: str) -> RefreshTokenFamily:
    claims = jwt.decode(refresh, options={"verify_signature": False})
    return RefreshTokenFamily.objects.get(id=claims["sid"])


def _spent_since() -> timezone.datetime:
    """An instant before which every token of a family has expired and the
    extra retention has run out."""
    return (
        timezone.now()
        - settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"]
        - timedelta(seconds=settings.USERS_REFRESH_FAMILY_RETENTION_SECONDS)
        - timedelta(minutes=1)
    )


def test_rotation_records_when_the_family_last_issued_a_token(
    api_client, customer, auth_client
):
    refresh = auth_client(customer).tokens["refresh"]
    family = _family_of(refresh)
    assert family.last_issued_at is not None
    RefreshTokenFamily.objects.filter(id=family.id).update(
        last_issued_at=timezone.now() - timedelta(days=1)
    )

    rotated = api_client.post(REFRESH, {"refresh": refresh}, format="json")

    assert rotated.status_code == 200
    family.refresh_from_db()
    assert timezone.now() - family.last_issued_at < timedelta(minutes=1)


def test_only_families_no_token_of_which_can_matter_are_deleted(customer):
    old = _spent_since()
    recent = timezone.now() - timedelta(hours=1)
    families = {
        name: RefreshTokenFamily.objects.create(user=customer, **fields)
        for name, fields in {
            "expired_long_ago": {"last_issued_at": old},
            "revoked_long_ago": {"revoked_at": old, "last_issued_at": old},
            # From before last_issued_at, but revoked long ago.
            "revoked_long_ago_unknown_age": {"revoked_at": old},
            "revoked_recently": {"revoked_at": recent, "last_issued_at": recent},
            "active": {"last_issued_at": recent},
            # From before last_issued_at: its tokens may still be alive.
            "unknown_age": {"last_issued_at": None},
        }.items()
    }

    counts = users_prune_retained()

    assert counts == {"users_refreshtokenfamily": 3}
    kept = set(RefreshTokenFamily.objects.values_list("id", flat=True))
    assert kept == {
        families[name].id for name in ("revoked_recently", "active", "unknown_age")
    }


def test_a_refresh_token_whose_family_was_pruned_is_refused(
    api_client, customer, auth_client
):
    refresh = auth_client(customer).tokens["refresh"]
    family = _family_of(refresh)
    # Aged by hand: the token itself is still unexpired, so only the
    # missing family can refuse it.
    RefreshTokenFamily.objects.filter(id=family.id).update(
        last_issued_at=_spent_since()
    )

    result = users_prune_retained_task.apply().get()

    assert result == {"users_refreshtokenfamily": 1}
    assert not RefreshTokenFamily.objects.filter(id=family.id).exists()
    assert_problem(
        api_client.post(REFRESH, {"refresh": refresh}, format="json"),
        401,
        "token_not_valid",
    )
