from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.core.errors import AuthenticationFailed, InvalidInput
from apps.users.interface import EmailAlreadyRegistered
from apps.users.models import User, normalize_email


class InvalidCredentials(AuthenticationFailed):
    code = "invalid_credentials"
    title = "Invalid credentials"


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc, field="password") from None


def _save(user: User) -> User:
    try:
        user.full_clean(exclude=["password"], validate_unique=False)
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc) from None
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
    email = normalize_email(email)
    # Checked before the (deliberately slow) Argon2 hash; _save still catches
    # the race.
    if User.objects.filter(email=email).exists():
        raise EmailAlreadyRegistered(f"{email} is already registered.")
    user = User(email=email, name=name, is_staff=is_staff)
    _check_password(password, user)
    user.set_password(password)
    return _save(user)


@transaction.atomic
def user_update(
    *,
    user: User,
    email: str | None = None,
    name: str | None = None,
    password: str | None = None,
    current_password: str | None = None,
) -> User:
    """Change a user's profile; a new password needs the current one."""
    if email is not None:
        email = normalize_email(email)
        if User.objects.filter(email=email).exclude(pk=user.pk).exists():
            raise EmailAlreadyRegistered(f"{email} is already registered.")
        user.email = email
    if name is not None:
        user.name = name
    if password is not None:
        if not current_password or not user.check_password(current_password):
            raise InvalidInput(
                {
                    "current_password": [
                        "The current password is required and must match."
                    ]
                }
            )
        _check_password(password, user)
        # A new password hash revokes every token issued before
        # (SIMPLE_JWT CHECK_REVOKE_TOKEN).
        user.set_password(password)
    elif current_password is not None:
        raise InvalidInput(
            {"current_password": ["Only needed together with a new password."]}
        )
    return _save(user)


@transaction.atomic
def user_delete(*, user: User) -> None:
    user.delete()


def user_authenticate(*, email: str, password: str) -> User:
    """Return the active user with these credentials.

    Raises InvalidCredentials for an unknown email, a wrong password and an
    inactive account alike, so none can be told apart.
    """
    user = authenticate(username=normalize_email(email), password=password)
    if user is None:
        raise InvalidCredentials("Email or password is incorrect.")
    return user
