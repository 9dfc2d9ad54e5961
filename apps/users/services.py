from uuid import UUID

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import ErrorMessage, InvalidInput
from apps.core.validation import full_clean
from apps.gateway.interface import Principal, user_tokens_revoke
from apps.users.errors import EmailAlreadyRegistered, InvalidCredentials
from apps.users.models import RefreshTokenFamily, User, normalize_email


def _validate(user: User, *, password: str | None = None) -> None:
    """Check every field and a new password, reporting all errors at once.

    Uniqueness is left to the caller, so that only a body valid in every
    other respect learns whether an email is taken.
    """
    errors: dict[str, list[str]] = {}
    try:
        full_clean(user, exclude=["password"])
    except InvalidInput as exc:
        errors.update(exc.errors)
    if password is not None:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            invalid = InvalidInput.from_validation_error(exc, field="password")
            errors.update(invalid.errors)
    if errors:
        raise InvalidInput(errors)


def _save(user: User) -> User:
    try:
        # A savepoint, so a lost race on the email leaves the outer
        # transaction usable.
        with transaction.atomic():
            user.save()
    except IntegrityError:
        if User.objects.filter(email=user.email).exclude(pk=user.pk).exists():
            raise EmailAlreadyRegistered(
                f"{user.email} is already registered."
            ) from None
        raise
    return user


@transaction.atomic
def user_create(
    *, email: str, name: str, password: str, is_staff: bool = False
) -> User:
    user = User(email=normalize_email(email), name=name, is_staff=is_staff)
    _validate(user, password=password)
    # Looked up only for a body valid in every other respect (no cheap
    # oracle of registered emails), and before the deliberately slow Argon2
    # hash; _save still catches the race.
    if User.objects.filter(email=user.email).exists():
        raise EmailAlreadyRegistered(f"{user.email} is already registered.")
    user.set_password(password)
    return _save(user)


def _confirm_current_password(
    *, actor: Principal, user: User, current_password: str | None, staff_may_skip: bool
) -> None:
    """Check that whoever changes how ``user`` logs in knows the password.

    An access token alone (a stolen one, a shared device) must not take an
    account over for good. Staff acting on someone else's account may leave
    the password out where ``staff_may_skip``: they cannot know it, and the
    staff token is the authority for their other actions too.
    """
    if (
        current_password is None
        and staff_may_skip
        and actor.is_staff
        and actor.id != user.pk
    ):
        return
    if not current_password:
        message = (
            "The current password is needed to change the email or the "
            "password, or to delete the account."
        )
        raise InvalidInput({"current_password": [ErrorMessage(message, "required")]})
    if not user.check_password(current_password):
        message = "The current password is incorrect."
        raise InvalidInput(
            {"current_password": [ErrorMessage(message, "password_incorrect")]}
        )


@transaction.atomic
def user_update(
    *,
    actor: Principal,
    user: User,
    email: str | None = None,
    name: str | None = None,
    password: str | None = None,
    current_password: str | None = None,
) -> User:
    """Change ``user``'s profile on behalf of ``actor``.

    A new email or password needs the current password (staff changing
    someone else's email excepted; nobody sets someone else's password
    here); a current password that is sent must be right in any case. The
    email is looked up last, so that only a caller who passed every other
    check learns whether it is taken.
    """
    if email is not None:
        email = normalize_email(email)
    email_changes = email is not None and email != user.email
    if email is not None:
        user.email = email
    if name is not None:
        user.name = name
    _validate(user, password=password)
    if password is not None or email_changes or current_password is not None:
        _confirm_current_password(
            actor=actor,
            user=user,
            current_password=current_password,
            staff_may_skip=password is None,
        )
    if email_changes and User.objects.filter(email=email).exclude(pk=user.pk).exists():
        raise EmailAlreadyRegistered(f"{email} is already registered.")
    if password is not None:
        # A new password hash revokes every refresh token issued before
        # (SIMPLE_JWT CHECK_REVOKE_TOKEN), the revocation record every
        # access token.
        user.set_password(password)
        user_tokens_revoke(user_id=user.pk)
    return _save(user)


@transaction.atomic
def user_delete(
    *, actor: Principal, user: User, current_password: str | None = None
) -> None:
    """Delete ``user`` on behalf of ``actor``; their tokens are revoked.

    Needs the current password, except from staff deleting someone else.
    """
    _confirm_current_password(
        actor=actor, user=user, current_password=current_password, staff_may_skip=True
    )
    user_tokens_revoke(user_id=user.pk)
    user.delete()


def user_access_tokens_revoke(*, user_id: UUID) -> None:
    """Revoke every access token of the user issued until now (on commit).

    For changes the tokens' claims no longer match (an operator editing
    staff flags, the email, the password); refresh tokens are left to their
    own checks (password hash, active user) and rotate into fresh claims.
    """
    user_tokens_revoke(user_id=user_id)


@transaction.atomic
def user_tokens_revoke_all(*, user_id: UUID) -> None:
    """Log a user out everywhere: every login's refresh tokens (their
    families) and every access token issued until now are revoked."""
    RefreshTokenFamily.objects.filter(user_id=user_id, revoked_at__isnull=True).update(
        revoked_at=timezone.now(),
        revoked_reason=RefreshTokenFamily.RevokedReason.LOGGED_OUT,
    )
    user_tokens_revoke(user_id=user_id)


@transaction.atomic
def user_set_active(*, user_ids: list[UUID], is_active: bool) -> int:
    """Activate or deactivate users; deactivation revokes their tokens
    (inactive users cannot log in or refresh either). Returns how many
    users changed."""
    changed = User.objects.filter(id__in=user_ids).exclude(is_active=is_active)
    changed_ids = list(changed.values_list("id", flat=True))
    User.objects.filter(id__in=changed_ids).update(is_active=is_active)
    if not is_active:
        for user_id in changed_ids:
            user_tokens_revoke(user_id=user_id)
    return len(changed_ids)


def user_authenticate(*, email: str, password: str) -> User:
    """Return the active user with these credentials.

    Raises InvalidCredentials for an unknown email, a wrong password and an
    inactive account alike, so none can be told apart.
    """
    user = authenticate(username=normalize_email(email), password=password)
    if user is None:
        raise InvalidCredentials("Email or password is incorrect.")
    return user


@transaction.atomic
def refresh_token_family_start(*, user: User) -> RefreshTokenFamily:
    """Open the family that the refresh tokens of one login belong to."""
    family = RefreshTokenFamily(user=user, last_issued_at=timezone.now())
    family.full_clean()
    family.save()
    return family


def refresh_token_family_issued(*, family_id: UUID | str) -> None:
    """Record that a refresh token of the family was just issued (a
    rotation): the family lives until that token expires (ADR 0030)."""
    RefreshTokenFamily.objects.filter(id=family_id).update(
        last_issued_at=timezone.now()
    )


def refresh_token_family_revoke(
    *, family_id: UUID | str, reason: RefreshTokenFamily.RevokedReason
) -> bool:
    """Revoke a family, so that none of its refresh tokens rotates again.

    One UPDATE: a caller that answers an error afterwards runs it outside
    any transaction that the error rolls back. Returns whether the family
    was active until now.
    """
    revoked = RefreshTokenFamily.objects.filter(
        id=family_id, revoked_at__isnull=True
    ).update(revoked_at=timezone.now(), revoked_reason=reason)
    return revoked == 1
