"""Tests: the real PostgreSQL, RabbitMQ and Redis on localhost."""

import os

# Read before base.py so the defaults below apply to every alias.
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop")
os.environ.setdefault(
    "ORDERS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop_orders"
)
os.environ.setdefault(
    "CATALOG_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shop_catalog"
)
os.environ.setdefault("CACHE_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")

from config.env import VAR_DIR, env  # noqa: E402
from config.keys import load_or_create_keypair  # noqa: E402

from .base import *  # noqa: E402, F403
from .base import PASSWORD_HASHERS, SIMPLE_JWT  # noqa: E402

SECRET_KEY = "test-only-secret-key-with-enough-length-and-entropy-0123456789"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

_private, _public = load_or_create_keypair(VAR_DIR / "test-keys")
# Server processes started by tests may be given other keys (key rotation).
SIMPLE_JWT["SIGNING_KEY"] = env.str("JWT_PRIVATE_KEY", multiline=True, default=_private)
SIMPLE_JWT["VERIFYING_KEY"] = env.str("JWT_PUBLIC_KEY", multiline=True, default=_public)

# Argon2 costs about 0.2 s and 100 MiB a hash by design; the suite hashes
# hundreds of passwords. Tests about hashing use the `argon2` fixture, which
# puts it first again. Argon2 stays listed so its hashes still verify.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]

# Test workers serve no metrics unless a test gives one a port of its own.
CELERY_METRICS_PORT = env.int("CELERY_METRICS_PORT", default=0)
# Rate limits stay on (every API test runs the middleware against Redis) but
# far above what a test sends; tests about limits set their own (settings,
# or the environment of the server processes they start).
_HIGH = "100000/minute"
RATELIMIT_ANONYMOUS = env.str("RATELIMIT_ANONYMOUS", default=_HIGH)
RATELIMIT_AUTHENTICATED = env.str("RATELIMIT_AUTHENTICATED", default=_HIGH)
RATELIMIT_LOGIN_IP = env.str("RATELIMIT_LOGIN_IP", default=_HIGH)
RATELIMIT_LOGIN_EMAIL = env.str("RATELIMIT_LOGIN_EMAIL", default=_HIGH)
RATELIMIT_REGISTER_IP = env.str("RATELIMIT_REGISTER_IP", default=_HIGH)
RATELIMIT_REGISTER_EMAIL = env.str("RATELIMIT_REGISTER_EMAIL", default=_HIGH)
