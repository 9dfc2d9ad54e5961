"""Production: every secret comes from the environment, with no default.

A missing secret stops the process at start-up (ImproperlyConfigured).
"""

from config.env import cache, database, env
from config.keys import public_pem_from_private

from .base import *  # noqa: F403
from .base import CATALOG_PG_SETTINGS, SIMPLE_JWT

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")

DATABASES = {
    "default": database("DATABASE_URL"),
    "orders": database("ORDERS_DATABASE_URL"),
    "catalog": database("CATALOG_DATABASE_URL", pg_settings=CATALOG_PG_SETTINGS),
}

CACHES = {"default": cache("CACHE_URL")}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
EVENTS_BROKER_URL = env.str("EVENTS_BROKER_URL", default=CELERY_BROKER_URL)

_private = env.str("JWT_PRIVATE_KEY", multiline=True)
SIMPLE_JWT["SIGNING_KEY"] = _private
SIMPLE_JWT["VERIFYING_KEY"] = env.str(
    "JWT_PUBLIC_KEY", multiline=True, default=public_pem_from_private(_private)
)

# TLS is terminated by the ingress, which sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
