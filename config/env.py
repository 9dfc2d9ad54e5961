"""The one place settings read the environment (django-environ)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()


def read_dot_env() -> None:
    """Load a local .env (development only; deployments set the environment,
    and tests must not depend on a developer's file)."""
    if (BASE_DIR / ".env").is_file():
        env.read_env(str(BASE_DIR / ".env"))


def database(
    var: str, default: str | None = None, *, pg_settings: dict | None = None
) -> dict:
    """Return a DATABASES entry from the URL in environment variable ``var``.

    ``postgres://``, ``sqlite:///`` and ``mongodb://`` (django-mongodb-backend)
    URLs are understood. Without a default, a missing variable is an error.
    ``pg_settings`` are PostgreSQL run-time parameters for every session.
    """
    url = env.str(var) if default is None else env.str(var, default=default)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        # django-mongodb-backend takes the whole URI as HOST; the database
        # name is the URI's path. Imported only when used: the backend
        # registers a __search lookup that would shadow PostgreSQL's.
        return {"ENGINE": "django_mongodb_backend", "HOST": url, "NAME": ""}
    config = environ.Env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # The embedded default serves several clients at once: WAL lets
        # readers run beside a writer, IMMEDIATE takes the write lock when a
        # transaction starts (no deadlocked upgrade from a read lock), and
        # a writer waits for the lock instead of failing "database is
        # locked".
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT_SECONDS", default=30),
        }
    if config["ENGINE"] == "django.db.backends.postgresql":
        config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
        config["CONN_HEALTH_CHECKS"] = True
        config.setdefault("OPTIONS", {})
        config["OPTIONS"].setdefault(
            "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
        )
        if pg_settings:
            config["OPTIONS"].setdefault(
                "options", " ".join(f"-c {k}={v}" for k, v in pg_settings.items())
            )
    return config


def cache(url: str) -> dict:
    """Return a CACHES entry: ``redis://`` uses Django's Redis backend."""
    if url.startswith(("redis://", "rediss://")):
        return {
            "BACKEND": "apps.core.cache.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    if url.startswith("locmem://"):
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    raise ValueError(f"Unsupported CACHE_URL scheme: {url!r}")
