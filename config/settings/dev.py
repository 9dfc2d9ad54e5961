"""Development: the embedded default (SQLite files under var/, tasks inline)."""

from config.env import VAR_DIR, env, read_dot_env
from config.keys import load_or_create_keypair

read_dot_env()

from .base import *  # noqa: E402, F403
from .base import LOG_LEVEL, SIMPLE_JWT, logging_config  # noqa: E402

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY", default="dev-only-insecure-key-never-use-in-production"
)
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"]
)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
EVENTS_PUBLISHER = env.str("EVENTS_PUBLISHER", default="inline")
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
# Readable log lines, and each span printed as one line as it ends.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logging_config(LOG_LEVEL, LOG_FORMAT)
OTEL_TRACES_EXPORTER = env.str("OTEL_TRACES_EXPORTER", default="console")

VAR_DIR.mkdir(exist_ok=True)
_private, _public = load_or_create_keypair(VAR_DIR / "keys")
SIMPLE_JWT["SIGNING_KEY"] = env.str("JWT_PRIVATE_KEY", multiline=True, default=_private)
SIMPLE_JWT["VERIFYING_KEY"] = env.str("JWT_PUBLIC_KEY", multiline=True, default=_public)
# A developer's worker serves its metrics to this machine only.
CELERY_METRICS_ADDRESS = env.str("CELERY_METRICS_ADDRESS", default="127.0.0.1")
