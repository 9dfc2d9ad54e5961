"""Settings shared by every environment; each value comes from the environment.

dev.py, test.py and prod.py override what differs. See .env.example for the
meaning of every variable.
"""

import json
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, VAR_DIR, cache, database, env

# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"
APPEND_SLASH = False
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------
# Applications
# ---------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.core",
    "apps.users",
    "apps.products",
    "apps.orders",
    "apps.analytics",
    "apps.gateway",
    "sagas",
]

MIDDLEWARE = [
    # Request counts and latency (django-prometheus): first and last, so
    # that the rest of the stack is inside the measurement.
    "apps.core.metrics.PrometheusBeforeMiddleware",
    "apps.core.middleware.RequestIdMiddleware",
    # Bearer tokens verified once, no database read: request.principal
    # (ADR 0017). The session and auth middleware below serve the admin.
    "apps.gateway.auth.GatewayAuthenticationMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The gateway's authentication middleware (request.principal) goes
    # right before this one: the budget of a verified caller is per user.
    # Early, so a refused request costs no session, CSRF or view work.
    "apps.gateway.middleware.RateLimitMiddleware",
    # The public routes of contexts in other deployments, proxied (ADR 0025).
    "apps.gateway.proxy.GatewayProxyMiddleware",
    # ETag on every GET that has none (lists, search) and 304 for a match.
    "django.middleware.http.ConditionalGetMiddleware",
    "django.middleware.common.CommonMiddleware",
    # ADMIN_ONLY_MIDDLEWARE, skipped for the API and the probes.
    "apps.core.middleware.AdminOnlyMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.core.middleware.ProblemDetailsMiddleware",
    "apps.core.metrics.PrometheusAfterMiddleware",
]
# What the admin's HTML pages need and bearer-token clients do not, in
# order; AdminOnlyMiddleware runs them except under these prefixes.
ADMIN_ONLY_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ADMIN_ONLY_SKIP_PREFIXES = [
    "/api/",
    "/health/",
    "/metrics",
    "/.well-known/",
    "/internal/",
]
# The admin's and Django's checks look for these four in MIDDLEWARE by
# name; apps.core.checks checks them in ADMIN_ONLY_MIDDLEWARE instead.
SILENCED_SYSTEM_CHECKS = [
    "admin.E408",
    "admin.E409",
    "admin.E410",
    "security.W003",
    # SQLite (make run) builds the list indexes without their INCLUDE
    # columns, which only PostgreSQL reads (ADR 0028): nothing to act on.
    "models.W040",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Project-wide overrides of other apps' templates (the admin index).
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")

# ---------------------------------------------------------------------------
# Databases: one alias per bounded context (DESIGN.md, "Data")
# ---------------------------------------------------------------------------
# Search: how alike a misspelt word must be to a known word of the catalog
# (PostgreSQL, ADR 0028) or to a word of a product name (SQLite): word
# similarity, 0-1, pg_trgm's on PostgreSQL, a close copy on SQLite; the
# extension's default 0.6 misses most one-letter typos.
CATALOG_SEARCH_TYPO_THRESHOLD = env.float("CATALOG_SEARCH_TYPO_THRESHOLD", default=0.45)
CATALOG_PG_SETTINGS = {
    "pg_trgm.word_similarity_threshold": CATALOG_SEARCH_TYPO_THRESHOLD
}
DATABASES = {
    "default": database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'default.sqlite3'}"),
    "orders": database(
        "ORDERS_DATABASE_URL", f"sqlite:///{VAR_DIR / 'orders.sqlite3'}"
    ),
    "catalog": database(
        "CATALOG_DATABASE_URL",
        f"sqlite:///{VAR_DIR / 'catalog.sqlite3'}",
        pg_settings=CATALOG_PG_SETTINGS,
    ),
}
DATABASE_ROUTERS = ["config.db_routers.ContextRouter"]

# ---------------------------------------------------------------------------
# Cache and broker
# ---------------------------------------------------------------------------
_CACHE_URL = env.str("CACHE_URL", default="locmemcache://")
CACHES = {"default": cache("CACHE_URL", default="locmemcache://")}
# Product detail responses are cached under generation tokens that every
# write of the product kills (ADR 0026): never stale, so the timeout only
# bounds memory. 0 turns the cache off.
CATALOG_PRODUCT_CACHE_SECONDS = env.int("CATALOG_PRODUCT_CACHE_SECONDS", default=3600)
# List and search pages likewise, under one token that every product write
# kills (ADR 0027): never stale either; the timeout bounds memory and how
# long a page is served between writes. 0 turns the page cache off.
CATALOG_LISTING_CACHE_SECONDS = env.int("CATALOG_LISTING_CACHE_SECONDS", default=300)
# A user's profile (GET /api/v1/users/<id>) likewise, under a token per user
# that every write of the user row kills (ADR 0031). 0 turns it off.
USERS_PROFILE_CACHE_SECONDS = env.int("USERS_PROFILE_CACHE_SECONDS", default=3600)

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_TIMEOUT = 2

# ---------------------------------------------------------------------------
# Events: transactional outbox -> RabbitMQ topic exchange -> consumers
# ---------------------------------------------------------------------------
# "amqp": the relay (manage.py relay_outbox) publishes to RabbitMQ;
# "inline": each commit publishes in-process to the consumers (make run).
EVENTS_PUBLISHER = env.str("EVENTS_PUBLISHER", default="amqp")
EVENTS_BROKER_URL = env.str("EVENTS_BROKER_URL", default=CELERY_BROKER_URL)
EVENTS_EXCHANGE = env.str("EVENTS_EXCHANGE", default="shop.events")
EVENTS_CONNECT_TIMEOUT = env.float("EVENTS_CONNECT_TIMEOUT", default=2.0)
# A consumer's failed attempt waits this long before the next one; after
# the last delay the event goes to the consumer's dead-letter queue.
EVENTS_RETRY_DELAYS_MS = env.list(
    "EVENTS_RETRY_DELAYS_MS", cast=int, default=[1000, 5000, 30000]
)
# Outboxes the relay drains, and how.
OUTBOX_MODELS = ["orders.OutboxEvent"]
OUTBOX_RELAY_BATCH_SIZE = env.int("OUTBOX_RELAY_BATCH_SIZE", default=100)
OUTBOX_RELAY_POLL_SECONDS = env.float("OUTBOX_RELAY_POLL_SECONDS", default=1.0)
# Each consumer: its handler, its inbox (in the database its work writes
# to) and the routing keys its queue is bound with.
EVENT_CONSUMERS = {
    "notification": {
        "handler": "apps.orders.consumers.notification_handle",
        "inbox": "orders.InboxEntry",
        "bindings": ["order.*"],
    },
    "analytics": {
        "handler": "apps.analytics.consumers.analytics_handle",
        "inbox": "analytics.InboxEntry",
        "bindings": ["order.*"],
    },
    "inventory": {
        "handler": "apps.products.consumers.inventory_handle",
        "inbox": "products.InboxEntry",
        "bindings": ["order.*"],
    },
    # Starts the create-order saga on order.created and compensates on
    # order.cancelled. Bound to every order event: the inbox applies an
    # order's events in sequence, so it must see each one.
    "order_saga": {
        "handler": "sagas.consumers.order_saga_handle",
        "inbox": "sagas.InboxEntry",
        "bindings": ["order.*"],
    },
}
# The consumers a Celery worker runs ("*": all; empty: none).
EVENT_CONSUMERS_ENABLED = env.list("EVENT_CONSUMERS_ENABLED", default=["*"])
# Tests only: a file naming a consumer that then dies before its next ack.
EVENTS_CHAOS_CRASH_FILE = env.str("EVENTS_CHAOS_CRASH_FILE", default="")

# ---------------------------------------------------------------------------
# The create-order saga (sagas/) and its providers
# ---------------------------------------------------------------------------
# The Celery queue of saga step tasks ("": Celery's default queue).
SAGA_TASK_QUEUE = env.str("SAGA_TASK_QUEUE", default="")
# A step (compensation) that keeps failing transiently is given up after
# this many attempts, with exponential backoff between them.
SAGA_STEP_MAX_ATTEMPTS = env.int("SAGA_STEP_MAX_ATTEMPTS", default=5)
SAGA_COMPENSATION_MAX_ATTEMPTS = env.int("SAGA_COMPENSATION_MAX_ATTEMPTS", default=10)
SAGA_RETRY_BACKOFF_SECONDS = env.float("SAGA_RETRY_BACKOFF_SECONDS", default=1.0)
SAGA_RETRY_BACKOFF_MAX_SECONDS = env.float(
    "SAGA_RETRY_BACKOFF_MAX_SECONDS", default=60.0
)
# A step whose provider's circuit is open waits for it (looking again every
# SAGA_CIRCUIT_RETRY_SECONDS) without spending attempts, for this long; an
# outage shorter than that delays orders instead of cancelling them. Keep it
# well under CATALOG_RESERVATION_TTL_SECONDS.
SAGA_CIRCUIT_WAIT_SECONDS = env.float("SAGA_CIRCUIT_WAIT_SECONDS", default=600)
SAGA_CIRCUIT_RETRY_SECONDS = env.float("SAGA_CIRCUIT_RETRY_SECONDS", default=10)
# A worker holds a saga's lease while it runs a step; the sweeper re-queues
# a saga whose lease (or queued task) is overdue.
SAGA_LEASE_SECONDS = env.float("SAGA_LEASE_SECONDS", default=60)
SAGA_QUEUE_GRACE_SECONDS = env.float("SAGA_QUEUE_GRACE_SECONDS", default=300)
SAGA_STEP_SOFT_TIME_LIMIT_SECONDS = env.float(
    "SAGA_STEP_SOFT_TIME_LIMIT_SECONDS", default=30
)
# The admin lists a saga as stuck after this long without progress.
SAGA_STUCK_MINUTES = env.int("SAGA_STUCK_MINUTES", default=10)
SAGA_PAYMENT_PROVIDER = env.str(
    "SAGA_PAYMENT_PROVIDER", default="sagas.providers.sandbox.SandboxPaymentProvider"
)
SAGA_SHIPPING_PROVIDER = env.str(
    "SAGA_SHIPPING_PROVIDER",
    default="sagas.providers.sandbox.SandboxShippingProvider",
)
# How long the sandbox's tok_slow answers take, seconds.
SAGA_SANDBOX_SLOW_SECONDS = env.float("SAGA_SANDBOX_SLOW_SECONDS", default=3.0)

# ---------------------------------------------------------------------------
# Rate limits at the edge (apps/gateway/ratelimit.py, ADR 0019)
# ---------------------------------------------------------------------------
RATELIMIT_ENABLED = env.bool("RATELIMIT_ENABLED", default=True)
# Shared by every process: Redis (default: CACHE_URL's when it is Redis),
# or memory:// (each process counts alone: make run).
RATELIMIT_STORAGE_URL = env.str(
    "RATELIMIT_STORAGE_URL",
    default=_CACHE_URL
    if _CACHE_URL.startswith(("redis://", "rediss://"))
    else "memory://",
)
RATELIMIT_KEY_PREFIX = env.str("RATELIMIT_KEY_PREFIX", default="ratelimit")
# Budgets in the limits library's notation ("10/minute", "10/minute;100/hour";
# empty: none). Every /api/ request spends one of its caller's: per IP when
# anonymous, per user when authenticated.
RATELIMIT_ANONYMOUS = env.str("RATELIMIT_ANONYMOUS", default="120/minute")
RATELIMIT_AUTHENTICATED = env.str("RATELIMIT_AUTHENTICATED", default="600/minute")
# Login and registration hash a password (Argon2, ~100 MiB and 0.3 s of
# CPU): stricter budgets per client IP and per email, on top.
RATELIMIT_LOGIN_IP = env.str("RATELIMIT_LOGIN_IP", default="10/minute")
RATELIMIT_LOGIN_EMAIL = env.str("RATELIMIT_LOGIN_EMAIL", default="5/minute")
RATELIMIT_REGISTER_IP = env.str("RATELIMIT_REGISTER_IP", default="5/minute")
RATELIMIT_REGISTER_EMAIL = env.str("RATELIMIT_REGISTER_EMAIL", default="5/minute")
# Whom X-Forwarded-For is believed from: empty (nobody: REMOTE_ADDR is the
# client), a number of proxies in front (e.g. 1), or the proxies' CIDRs.
RATELIMIT_TRUSTED_PROXIES = env.list("RATELIMIT_TRUSTED_PROXIES", default=[])
# Redis down: count per process in memory, try Redis again this often, and
# say so in the log at most this often. Socket timeouts bound each try.
RATELIMIT_REDIS_TIMEOUT_SECONDS = env.float(
    "RATELIMIT_REDIS_TIMEOUT_SECONDS", default=0.25
)
RATELIMIT_REDIS_RETRY_SECONDS = env.float("RATELIMIT_REDIS_RETRY_SECONDS", default=5)
RATELIMIT_REDIS_WARN_SECONDS = env.float("RATELIMIT_REDIS_WARN_SECONDS", default=60)

# ---------------------------------------------------------------------------
# Resilience of calls that leave the process (apps/gateway/resilience.py)
# ---------------------------------------------------------------------------
RESILIENCE_TIMEOUT_SECONDS = env.float("RESILIENCE_TIMEOUT_SECONDS", default=5.0)
RESILIENCE_TOTAL_TIMEOUT_SECONDS = env.float(
    "RESILIENCE_TOTAL_TIMEOUT_SECONDS", default=7.0
)
RESILIENCE_CONNECT_TIMEOUT_SECONDS = env.float(
    "RESILIENCE_CONNECT_TIMEOUT_SECONDS", default=2.0
)
RESILIENCE_RETRY_DELAYS_MS = env.list(
    "RESILIENCE_RETRY_DELAYS_MS", cast=int, default=[100, 200, 400]
)
# Per destination and process: calls running at once, and calls waiting for
# a turn (until their deadline); one more is rejected at once (BulkheadFull).
RESILIENCE_BULKHEAD_MAX_CONCURRENT = env.int(
    "RESILIENCE_BULKHEAD_MAX_CONCURRENT", default=10
)
RESILIENCE_BULKHEAD_MAX_QUEUE = env.int("RESILIENCE_BULKHEAD_MAX_QUEUE", default=20)
CIRCUIT_BREAKER_FAIL_MAX = env.int("CIRCUIT_BREAKER_FAIL_MAX", default=5)
CIRCUIT_BREAKER_RESET_SECONDS = env.float("CIRCUIT_BREAKER_RESET_SECONDS", default=60)
CIRCUIT_BREAKER_SUCCESS_THRESHOLD = env.int(
    "CIRCUIT_BREAKER_SUCCESS_THRESHOLD", default=3
)
# Redis shared by every process for the breakers' state ("": per process).
CIRCUIT_BREAKER_REDIS_URL = env.str("CIRCUIT_BREAKER_REDIS_URL", default="")

# ---------------------------------------------------------------------------
# Where each context runs (apps/gateway: bindings, proxy, balancer; ADR 0025)
# ---------------------------------------------------------------------------
# Every context runs in this process unless CONTEXTS_JSON says otherwise,
# e.g. '{"products": {"mode": "remote", "instances": ["http://catalog:8000",
# {"url": "http://catalog-2:8000", "weight": 2}], "balancer": "weighted"}}'
# (balancers: round_robin, least_connections, weighted).
CONTEXTS = {
    name: {"mode": "local"} for name in ("users", "products", "orders", "analytics")
}
for _name, _config in json.loads(env.str("CONTEXTS_JSON", default="") or "{}").items():
    CONTEXTS[_name] = {**CONTEXTS.get(_name, {}), **_config}
# Active health checks of remote instances (GET <url>/health/ready).
BALANCER_HEALTH_INTERVAL_SECONDS = env.float(
    "BALANCER_HEALTH_INTERVAL_SECONDS", default=5.0
)
BALANCER_HEALTH_TIMEOUT_SECONDS = env.float(
    "BALANCER_HEALTH_TIMEOUT_SECONDS", default=1.0
)
# The public routes of each context, proxied when it is remote.
CONTEXT_ROUTES = {
    "users": ["/api/v1/users", "/.well-known/jwks.json"],
    "products": ["/api/v1/products"],
    "orders": ["/api/v1/orders"],
    "analytics": ["/api/v1/analytics"],
}
# The shared secret of the internal API between deployments ("": no
# internal API here; set the same value on every deployment that calls or
# serves one).
INTERNAL_API_TOKEN = env.str("INTERNAL_API_TOKEN", default="")
# Request bodies up to this size are buffered by the proxy (so an
# idempotent request can be retried); larger ones are streamed.
GATEWAY_PROXY_BUFFER_BYTES = env.int("GATEWAY_PROXY_BUFFER_BYTES", default=1024 * 1024)

# ---------------------------------------------------------------------------
# Gateway authentication (apps/gateway/auth.py, ADR 0017)
# ---------------------------------------------------------------------------
# Redis holding the shared token revocation record; default: the cache's
# Redis, or Django's cache (the embedded default's locmem) when that is not
# Redis. Unreachable: tokens are accepted unchecked (fail open, logged).
GATEWAY_REDIS_URL = env.str(
    "GATEWAY_REDIS_URL",
    default=_CACHE_URL if _CACHE_URL.startswith(("redis://", "rediss://")) else "",
)
GATEWAY_REDIS_TIMEOUT_SECONDS = env.float("GATEWAY_REDIS_TIMEOUT_SECONDS", default=0.25)
# How long a process trusts what it read of a user's revocation record.
GATEWAY_REVOCATION_CACHE_SECONDS = env.float(
    "GATEWAY_REVOCATION_CACHE_SECONDS", default=1.0
)
# A remote users context's JWKS: kept this long, re-fetched for an unknown
# kid at most once per GATEWAY_JWKS_REFETCH_SECONDS.
GATEWAY_JWKS_CACHE_SECONDS = env.float("GATEWAY_JWKS_CACHE_SECONDS", default=300)
GATEWAY_JWKS_REFETCH_SECONDS = env.float("GATEWAY_JWKS_REFETCH_SECONDS", default=30)
GATEWAY_JWKS_TIMEOUT_SECONDS = env.float("GATEWAY_JWKS_TIMEOUT_SECONDS", default=2)

# ---------------------------------------------------------------------------
# Metrics: /metrics for Prometheus (apps/core/metrics.py, ADR 0023)
# ---------------------------------------------------------------------------
# Who may read /metrics: a peer in these networks that no proxy forwarded
# (no X-Forwarded-For, Forwarded or X-Real-IP), or a request carrying
# "Authorization: Bearer <METRICS_BEARER_TOKEN>" when that is set.
METRICS_ALLOWED_CIDRS = env.list(
    "METRICS_ALLOWED_CIDRS",
    default=[
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    ],
)
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")
# State read from the databases and the broker when /metrics is scraped,
# kept this long so that many scrapers cost one measurement.
METRICS_COLLECTORS = [
    "apps.orders.metrics.OrdersCollector",
    "sagas.metrics.StuckSagasCollector",
    "apps.core.messaging.metrics.OutboxCollector",
    "apps.core.messaging.metrics.DeadLettersCollector",
]
METRICS_STATE_CACHE_SECONDS = env.float("METRICS_STATE_CACHE_SECONDS", default=10)
# How long the dead-letter count waits for the broker, seconds.
METRICS_BROKER_TIMEOUT = env.float("METRICS_BROKER_TIMEOUT", default=1.0)
# A Celery worker serves its own metrics on this port (0: not at all).
CELERY_METRICS_PORT = env.int("CELERY_METRICS_PORT", default=9808)
CELERY_METRICS_ADDRESS = env.str("CELERY_METRICS_ADDRESS", default="0.0.0.0")  # noqa: S104

# ---------------------------------------------------------------------------
# E-mail (order notifications): console in development, SMTP by settings
# ---------------------------------------------------------------------------
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend"
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="shop@localhost")

# ---------------------------------------------------------------------------
# Authentication: users context, Argon2 passwords, RS256 JWTs
# ---------------------------------------------------------------------------
AUTH_USER_MODEL = "users.User"
PASSWORD_HASHERS = [
    # Django's Argon2id, at most PASSWORD_HASH_CONCURRENCY hashes at once per
    # process (ADR 0016); the same algorithm name, so stored hashes verify.
    "apps.users.hashers.BoundedArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
PASSWORD_HASH_CONCURRENCY = env.int("PASSWORD_HASH_CONCURRENCY", default=2)
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

JWT_ISSUER = env.str("JWT_ISSUER", default="shop-users")
SIMPLE_JWT = {
    "ALGORITHM": "RS256",
    # SIGNING_KEY and VERIFYING_KEY are filled in by each environment file.
    "ISSUER": JWT_ISSUER,
    "ACCESS_TOKEN_LIFETIME": timedelta(
        seconds=env.int("JWT_ACCESS_TOKEN_SECONDS", default=15 * 60)
    ),
    "REFRESH_TOKEN_LIFETIME": timedelta(
        seconds=env.int("JWT_REFRESH_TOKEN_SECONDS", default=7 * 24 * 3600)
    ),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "JTI_CLAIM": "jti",
    "CHECK_REVOKE_TOKEN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "AUTH_TOKEN_CLASSES": ("apps.users.tokens.AccessToken",),
    "LEEWAY": 5,
}

# ---------------------------------------------------------------------------
# REST framework and OpenAPI
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.gateway.auth.GatewayAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "apps.core.renderers.ProblemJSONRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "apps.core.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "apps.core.problems.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Shop API",
    "DESCRIPTION": "Users, catalog, orders. Errors are RFC 9457 problem details.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from this project (drf-spectacular-sidecar, pinned):
    # /api/docs/ works offline and loads nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The probes are plain Django views (no DRF on the cheapest path).
    "APPEND_PATHS": {
        "/health/live": {
            "get": {
                "operationId": "health_live",
                "summary": "Liveness: the process answers",
                "tags": ["health"],
                "security": [],
                "responses": {"200": {"description": '{"status": "ok"}'}},
            }
        },
        "/health/ready": {
            "get": {
                "operationId": "health_ready",
                "summary": "Readiness: databases, cache and broker reachable",
                "tags": ["health"],
                "security": [],
                "responses": {
                    "200": {"description": "Every check is ok"},
                    "503": {"description": "Names each check that is down"},
                },
            }
        },
    },
}

# ---------------------------------------------------------------------------
# Security headers (prod.py tightens)
# ---------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
CSRF_FAILURE_VIEW = "apps.core.problems.csrf_failure"

# ---------------------------------------------------------------------------
# Traces: OpenTelemetry (config/telemetry.py, ADR 0024); standard OTEL_ names
# ---------------------------------------------------------------------------
# "none": tracing off, no spans and no instrumentation on the hot paths (an
# incoming traceparent still passes through to events, tasks and outgoing
# calls). "otlp": to a collector (Jaeger takes OTLP). "console": one line a
# span on stdout. "jsonl": one JSON object a span, appended to
# OTEL_EXPORTER_JSONL_FILE ("{pid}" in it becomes the process id).
OTEL_SDK_DISABLED = env.bool("OTEL_SDK_DISABLED", default=False)
OTEL_TRACES_EXPORTER = env.str("OTEL_TRACES_EXPORTER", default="none")
# "http/protobuf" (port 4318) or "grpc" (4317). The endpoint is the
# collector's base URL ("": the exporter's default, localhost); headers,
# timeout, compression and certificates are read by the exporter from the
# other standard OTEL_EXPORTER_OTLP_* variables.
OTEL_EXPORTER_OTLP_PROTOCOL = env.str(
    "OTEL_EXPORTER_OTLP_PROTOCOL", default="http/protobuf"
)
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_EXPORTER_JSONL_FILE = env.str("OTEL_EXPORTER_JSONL_FILE", default="")
# Which new traces are kept (a caller's sampled flag decides for its own
# with the parentbased_ samplers): the ratio is OTEL_TRACES_SAMPLER_ARG.
OTEL_TRACES_SAMPLER = env.str("OTEL_TRACES_SAMPLER", default="parentbased_traceidratio")
OTEL_TRACES_SAMPLER_ARG = env.float("OTEL_TRACES_SAMPLER_ARG", default=1.0)
# Resource attributes: service.name ("": shop-web, shop-worker or
# shop-relay, by process) and service.version.
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="")
SERVICE_VERSION = env.str("SERVICE_VERSION", default="dev")
# Paths (regular expressions, comma-separated) that make no trace: probes
# and scrapes.
OTEL_PYTHON_DJANGO_EXCLUDED_URLS = env.str(
    "OTEL_PYTHON_DJANGO_EXCLUDED_URLS", default="health/,metrics"
)

# ---------------------------------------------------------------------------
# Logging: JSON lines ("json") or readable lines ("plain"), each with the
# trace, span, request and user ids (apps/core/logs.py)
# ---------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="json")


def logging_config(level: str, log_format: str) -> dict:
    """The LOGGING dict for a level and a format (json or plain)."""
    if log_format not in ("json", "plain"):
        raise ImproperlyConfigured("LOG_FORMAT must be json or plain")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "apps.core.logs.LogContextFilter"}},
        "formatters": {
            "json": {"()": "apps.core.logs.json_formatter"},
            "plain": {"()": "apps.core.logs.ReadableFormatter"},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's own console handler (debug mode) would print its
            # records a second time, in another format.
            "django": {"handlers": []},
            "django.server": {"handlers": ["console"], "propagate": False},
            # Requests that end in 4xx are the client's business, not the
            # log's.
            "django.request": {"level": "ERROR"},
            # Libraries whose DEBUG lines show request or response headers
            # (Authorization, cookies) or connection details: never below
            # INFO, whatever LOG_LEVEL says.
            "httpcore": {"level": "INFO"},
            # httpx logs every request at INFO: each health check of each
            # remote instance every few seconds, each call to a remote
            # context.
            "httpx": {"level": "WARNING"},
            # SQL with its parameters (password hashes, refresh tokens),
            # logged at DEBUG when DEBUG is on.
            "django.db.backends": {"level": "INFO"},
            "hpack": {"level": "WARNING"},
            "urllib3": {"level": "INFO"},
            "amqp": {"level": "INFO"},
        },
    }


LOGGING = logging_config(LOG_LEVEL, LOG_FORMAT)

# ---------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------
# How long stock stays held for an order before the sweeper releases it.
CATALOG_RESERVATION_TTL_SECONDS = env.int(
    "CATALOG_RESERVATION_TTL_SECONDS", default=15 * 60
)
# The Celery queue of the catalog's own tasks (the reservation sweeper):
# "" is Celery's default queue; a name sends them to the workers started
# with that queue (WORKER_QUEUES), e.g. the catalog's deployment when it runs
# apart (deploy/k8s/overlays/split-catalog).
CATALOG_TASK_QUEUE = env.str("CATALOG_TASK_QUEUE", default="")
CELERY_TASK_ROUTES = (
    {"apps.products.tasks.*": {"queue": CATALOG_TASK_QUEUE}}
    if CATALOG_TASK_QUEUE
    else {}
)

# ---------------------------------------------------------------------------
# Retention (ADR 0030): rows past these ages are deleted by each context's
# beat task (and ``manage.py prune_retained``).
# ---------------------------------------------------------------------------
# An Idempotency-Key retried after its record is pruned places a new order.
ORDERS_IDEMPOTENCY_RETENTION_SECONDS = env.int(
    "ORDERS_IDEMPOTENCY_RETENTION_SECONDS", default=24 * 3600
)
# Consumers' inbox entries (each aggregate's latest entry is always kept).
EVENTS_INBOX_RETENTION_SECONDS = env.int(
    "EVENTS_INBOX_RETENTION_SECONDS", default=7 * 24 * 3600
)
# Published outbox events (pending ones, and each aggregate's latest, stay).
EVENTS_OUTBOX_RETENTION_SECONDS = env.int(
    "EVENTS_OUTBOX_RETENTION_SECONDS", default=7 * 24 * 3600
)
# How long a refresh token family is kept after its last token expired or
# it was revoked, beyond the refresh token lifetime.
USERS_REFRESH_FAMILY_RETENTION_SECONDS = env.int(
    "USERS_REFRESH_FAMILY_RETENTION_SECONDS", default=24 * 3600
)
# Rows per DELETE statement, each in its own short transaction.
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=1000)
RETENTION_INTERVAL_SECONDS = env.int("RETENTION_INTERVAL_SECONDS", default=3600)
# What ``manage.py prune_retained`` runs: each context's own function.
RETENTION_PRUNERS = {
    "orders": "apps.orders.retention.orders_prune_retained",
    "catalog": "apps.products.retention.catalog_prune_retained",
    "analytics": "apps.analytics.retention.analytics_prune_retained",
    "users": "apps.users.retention.users_prune_retained",
    "sagas": "sagas.retention.sagas_prune_retained",
}

CELERY_BEAT_SCHEDULE = {
    "catalog-release-expired-reservations": {
        "task": "apps.products.tasks.reservations_release_expired_task",
        "schedule": env.int("CATALOG_SWEEP_INTERVAL_SECONDS", default=60),
    },
    # Words of deleted or rewritten products leave the search vocabulary
    # (ADR 0028); until then they only take a typo correction's place.
    "catalog-prune-search-words": {
        "task": "apps.products.tasks.search_words_prune_task",
        "schedule": env.int("CATALOG_SEARCH_WORDS_PRUNE_SECONDS", default=3600),
    },
    "sagas-sweep-expired-leases": {
        "task": "sagas.tasks.saga_sweep_task",
        "schedule": env.int("SAGA_SWEEP_INTERVAL_SECONDS", default=30),
    },
    # A safety net: the relay process publishes within milliseconds.
    "events-relay-outbox": {
        "task": "apps.core.tasks.outbox_relay_task",
        "schedule": env.int("OUTBOX_RELAY_BEAT_SECONDS", default=30),
    },
    "orders-prune-retained": {
        "task": "apps.orders.tasks.orders_prune_retained_task",
        "schedule": RETENTION_INTERVAL_SECONDS,
    },
    "catalog-prune-retained": {
        "task": "apps.products.tasks.catalog_prune_retained_task",
        "schedule": RETENTION_INTERVAL_SECONDS,
    },
    "analytics-prune-retained": {
        "task": "apps.analytics.tasks.analytics_prune_retained_task",
        "schedule": RETENTION_INTERVAL_SECONDS,
    },
    "users-prune-retained": {
        "task": "apps.users.tasks.users_prune_retained_task",
        "schedule": RETENTION_INTERVAL_SECONDS,
    },
    "sagas-prune-retained": {
        "task": "sagas.tasks.sagas_prune_retained_task",
        "schedule": RETENTION_INTERVAL_SECONDS,
    },
}
