"""Model validation run by services, so every writer meets the same rules."""

from django.core.exceptions import ValidationError

from apps.core.errors import InvalidInput


def full_clean(instance, **kwargs) -> None:
    """Validate ``instance`` (``Model.full_clean``) or raise InvalidInput
    naming each field with Django's error code. Uniqueness is left to the
    database, which enforces it without a race."""
    try:
        instance.full_clean(validate_unique=False, **kwargs)
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc) from None
