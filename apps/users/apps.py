from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class UsersConfig(AppConfig):
    name = "apps.users"
    label = "users"
    verbose_name = "Users"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from apps.users.cache import user_saved_or_deleted
        from apps.users.models import User

        # Every writer of a user row, the admin's and Django's auth's saves
        # included, makes its cached profile dead (ADR 0031).
        for signal in (post_save, post_delete):
            signal.connect(
                user_saved_or_deleted,
                sender=User,
                dispatch_uid=f"users-cache-{id(signal)}",
            )
