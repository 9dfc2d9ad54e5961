from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import (
    AdminPasswordChangeForm,
    UserChangeForm,
    UserCreationForm,
)

from apps.users import services
from apps.users.models import User

# Changes after which the user's access tokens say too much: the gateway
# trusts their claims, so they are revoked (ADR 0017). Refresh tokens go on
# rotating (into tokens with the new claims) unless the user is inactive.
_REVOKING_FIELDS = {"is_active", "is_staff", "is_superuser", "email"}


class ShopUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")


class ShopUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class ShopAdminPasswordChangeForm(AdminPasswordChangeForm):
    """An operator setting a password revokes the user's tokens, as a
    password change through the API does."""

    def save(self, commit=True):
        user = super().save(commit=commit)
        services.user_access_tokens_revoke(user_id=user.pk)
        return user


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = ShopUserChangeForm
    add_form = ShopUserCreationForm
    change_password_form = ShopAdminPasswordChangeForm
    ordering = ("-created_at",)
    list_display = ("email", "name", "is_active", "is_staff", "created_at")
    list_filter = ("is_active", "is_staff", "is_superuser")
    search_fields = ("email", "name")
    readonly_fields = ("id", "created_at", "updated_at", "last_login")
    actions = ("deactivate", "activate")
    fieldsets = (
        (None, {"fields": ("id", "email", "name", "password")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups")},
        ),
        ("Dates", {"fields": ("created_at", "updated_at", "last_login")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "name", "password1", "password2"),
            },
        ),
    )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and _REVOKING_FIELDS & set(form.changed_data):
            services.user_access_tokens_revoke(user_id=obj.pk)

    def delete_model(self, request, obj):
        services.user_access_tokens_revoke(user_id=obj.pk)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for user_id in queryset.values_list("id", flat=True):
            services.user_access_tokens_revoke(user_id=user_id)
        super().delete_queryset(request, queryset)

    @admin.action(description="Deactivate selected users (no login, tokens refused)")
    def deactivate(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        updated = services.user_set_active(user_ids=ids, is_active=False)
        self.message_user(request, f"Deactivated {updated} user(s).")

    @admin.action(description="Activate selected users")
    def activate(self, request, queryset):
        ids = list(queryset.values_list("id", flat=True))
        updated = services.user_set_active(user_ids=ids, is_active=True)
        self.message_user(request, f"Activated {updated} user(s).")
