# syntax=docker/dockerfile:1
# The shop backend: one image for every process of the app, chosen by the
# command (deploy/docker-entrypoint.sh): web (granian, WSGI; the default),
# worker (Celery tasks, saga steps, event consumers), beat, relay (the
# outbox relay), migrate (every database alias, once), wait-migrations, or
# any other command (python manage.py ...).
#
#   docker build -t shop-backend .
#   docker run --env-file prod.env -p 8000:8000 shop-backend
#   docker run --env-file prod.env shop-backend worker
#
# Settings are config.settings.prod: the container needs DJANGO_SECRET_KEY,
# DJANGO_ALLOWED_HOSTS, DATABASE_URL, ORDERS_DATABASE_URL,
# CATALOG_DATABASE_URL, CACHE_URL, CELERY_BROKER_URL and JWT_PRIVATE_KEY (or
# JWT_PRIVATE_KEY_FILE); see
# .env.example. deploy/docker-compose.yml runs the whole stack.

# Pinned to a patch release (bump deliberately; tests/test_deploy.py rejects
# a floating tag).
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm

# ---------------------------------------------------------------------------
# Builder: wheels for every pinned requirement, installed into a virtualenv.
# The runtime stage copies the virtualenv, so both stages use one base image
# and one path (/opt/venv).
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip wheel --wheel-dir /tmp/wheels -r /tmp/requirements.txt \
    && /opt/venv/bin/pip install --no-index --find-links /tmp/wheels \
        -r /tmp/requirements.txt

# ---------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.prod

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app \
        --no-create-home --shell /usr/sbin/nologin app

# The dependencies' layer: rebuilt only when requirements.txt changes.
COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# The code stays owned by root: the server process cannot change it.
COPY . /app

# Bytecode compiled now, since the app user cannot write __pycache__ at run
# time. Static files (admin, DRF) collected now, with the base settings and a
# throwaway key: collectstatic needs neither secrets nor databases. granian
# serves them at /static/ (Django does not serve static files when DEBUG is
# off).
RUN python -m compileall -q /app \
    && DJANGO_SETTINGS_MODULE=config.settings.base \
       DJANGO_SECRET_KEY=collectstatic-at-build-time-only \
       python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /var/lib/shop/keys \
    && chown app:app /var/lib/shop/keys

# Numeric, so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001

EXPOSE 8000

# Liveness only (the process answers); /health/ready checks the databases,
# cache and broker. The request's Host is 127.0.0.1, which
# DJANGO_ALLOWED_HOSTS must therefore include. It fits the web process only:
# deploy/docker-compose.yml gives the worker its own check and turns it off
# for beat, relay and the one-shot commands; Kubernetes ignores it (the
# manifests' probes apply).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]

# Turns NAME_FILE secrets into NAME variables, then runs the command.
ENTRYPOINT ["/bin/sh", "/app/deploy/docker-entrypoint.sh"]

# The process, by name (deploy/docker-entrypoint.sh). web: granian with
# WEB_WORKERS processes x WEB_THREADS blocking threads; each thread holds up
# to one PostgreSQL connection per database alias (DATABASE_CONN_MAX_AGE).
CMD ["web"]
