from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.users.models import User

DEMO_ACCOUNTS = (
    # (email, name, password, is_staff)
    ("operator@shop.local", "Demo Operator", "operator-demo-pass-2026", True),
    ("customer@shop.local", "Demo Customer", "customer-demo-pass-2026", False),
)


class Command(BaseCommand):
    help = (
        "Create the demo operator and customer accounts when missing (--reset: "
        "restore their names, roles and passwords)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Restore existing demo accounts too (logs their sessions out).",
        )

    def handle(self, *args, reset=False, **options):
        if not settings.DEBUG:
            raise CommandError("Demo accounts are for development only (DEBUG=1).")
        for email, name, password, is_staff in DEMO_ACCOUNTS:
            user = User.objects.filter(email=email).first()
            note = ""
            if user is None or reset:
                # A new password revokes earlier tokens: only when asked, so
                # that restarting `make run` keeps everyone logged in.
                user = user or User(email=email)
                user.name = name
                user.is_staff = user.is_superuser = is_staff
                user.is_active = True
                user.set_password(password)
                user.save()
            elif not user.check_password(password):
                note = "  (changed since; seed_demo_users --reset restores it)"
            role = "operator (admin)" if is_staff else "customer"
            self.stdout.write(f"  {role:17} {email}  password: {password}{note}")
