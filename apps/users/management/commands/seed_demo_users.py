from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.users.models import User

DEMO_ACCOUNTS = (
    # (email, name, password, is_staff)
    ("operator@shop.local", "Demo Operator", "operator-demo-pass-2026", True),
    ("customer@shop.local", "Demo Customer", "customer-demo-pass-2026", False),
)


class Command(BaseCommand):
    help = "Create (or reset) the demo operator and customer accounts."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Demo accounts are for development only (DEBUG=1).")
        for email, name, password, is_staff in DEMO_ACCOUNTS:
            user, _ = User.objects.get_or_create(email=email, defaults={"name": name})
            user.name = name
            user.is_staff = user.is_superuser = is_staff
            user.is_active = True
            user.set_password(password)
            user.save()
            role = "operator (admin)" if is_staff else "customer"
            self.stdout.write(f"  {role:17} {email}  password: {password}")
