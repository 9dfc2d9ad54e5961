"""System checks that stand in for the ones AdminOnlyMiddleware silences.

Django's admin (admin.E408-E410) and deploy (security.W003) checks look for
the session, auth, messages and CSRF middleware in MIDDLEWARE by name;
here they are in ADMIN_ONLY_MIDDLEWARE, run by AdminOnlyMiddleware.
"""

from django.conf import settings
from django.core import checks

WRAPPER = "apps.core.middleware.AdminOnlyMiddleware"
REQUIRED = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
)


@checks.register(checks.Tags.security, deploy=False)
def check_admin_only_middleware(app_configs, **kwargs):
    wrapped = list(getattr(settings, "ADMIN_ONLY_MIDDLEWARE", []))
    active = WRAPPER in settings.MIDDLEWARE
    errors = []
    for path in REQUIRED:
        if path in settings.MIDDLEWARE or (active and path in wrapped):
            continue
        errors.append(
            checks.Error(
                f"{path} must be in MIDDLEWARE, or in ADMIN_ONLY_MIDDLEWARE "
                f"with {WRAPPER} in MIDDLEWARE (the admin needs it).",
                id="core.E001",
            )
        )
    if active and [p for p in REQUIRED if p in wrapped] != [
        p for p in wrapped if p in REQUIRED
    ]:
        errors.append(
            checks.Error("ADMIN_ONLY_MIDDLEWARE is out of order.", id="core.E002")
        )
    return errors
