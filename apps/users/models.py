import uuid

from django.contrib.auth.models import (
    AbstractBaseUser,
    BaseUserManager,
    PermissionsMixin,
)
from django.db import models, transaction
from django.db.models.functions import Lower

from apps.users import cache


def normalize_email(email: str) -> str:
    """Emails are compared and stored lower-cased (see ADR 0003)."""
    return (email or "").strip().lower()


class UserQuerySet(models.QuerySet):
    def update(self, **kwargs):
        """An UPDATE of users that makes their cached profiles dead (ADR
        0031): the matching rows are locked and their ids read, then
        exactly those rows are updated. ``save()`` does not come here (its
        signal does that)."""
        self._for_write = True
        using = self.db
        with transaction.atomic(using=using):
            ids = list(self.select_for_update().values_list("pk", flat=True))
            rows = models.QuerySet(self.model, using=using).filter(pk__in=ids)
            updated = rows.update(**kwargs)
            cache.changed(*ids, using=using)
        return updated

    update.alters_data = True


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):
    use_in_migrations = True

    def get_by_natural_key(self, email):
        return self.get(email=normalize_email(email))

    def create_user(self, email, password=None, **extra):
        user = self.model(email=normalize_email(email), **extra)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(max_length=254, unique=True)
    name = models.CharField(max_length=255)
    is_active = models.BooleanField(
        default=True, help_text="Inactive users cannot log in or use tokens."
    )
    is_staff = models.BooleanField(
        default=False, help_text="Operators: admin access and staff-only API."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["name"]

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(email=Lower("email")),
                name="users_user_email_lowercase",
            ),
        ]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = normalize_email(self.email)


class RefreshTokenFamily(models.Model):
    """One login: the refresh tokens rotated, one from the next, since it.

    Every refresh token carries its family's id (the ``sid`` claim). When a
    refresh token that was already used comes back, someone holds a copy:
    the family is revoked, and the current refresh token with it (OAuth 2.0
    Security BCP, RFC 9700 section 4.14.2).
    """

    class RevokedReason(models.TextChoices):
        # A rotated or revoked refresh token of the family was used again.
        REUSED = "reused", "refresh token reused"
        # The holder logged out.
        LOGGED_OUT = "logged_out", "logged out"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        User, on_delete=models.CASCADE, related_name="refresh_token_families"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When the family's latest refresh token was issued (at login, then at
    # each rotation): it expires a refresh lifetime later, and with it the
    # family (retention, ADR 0030). Null for families from before the field.
    last_issued_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(
        max_length=16, choices=RevokedReason.choices, blank=True
    )

    class Meta:
        verbose_name_plural = "refresh token families"
        # Retention (ADR 0030) deletes families by these instants.
        indexes = [
            models.Index(fields=["revoked_at"], name="users_family_revoked"),
            models.Index(fields=["last_issued_at"], name="users_family_last_issued"),
        ]

    def __str__(self):
        return f"{self.id} ({self.revoked_reason or 'active'})"
