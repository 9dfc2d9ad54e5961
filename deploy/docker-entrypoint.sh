#!/bin/sh
# Entrypoint of the shop image: load secrets given as files, then run the
# process named by the command, or the command itself.
#
# Processes by name (one image for all of them; Compose and Kubernetes pass
# the name as the command):
#
#   web               granian, WSGI, port 8000 (the image's default)
#   worker            Celery worker: tasks, saga steps and event consumers
#                     (WORKER_QUEUES: only these task queues)
#   beat              Celery beat (run exactly one)
#   relay             the outbox relay (manage.py relay_outbox)
#   migrate           migrations of every database alias, then exit
#   wait-migrations   wait until every alias is migrated, then exit (an
#                     init container's wait for the migration Job)
#   check             Django's system checks with the deployment checks
#
# Anything else runs as given (python manage.py createsuperuser, sh, ...).
#
# For NAME in DJANGO_SECRET_KEY, JWT_PRIVATE_KEY and JWT_PUBLIC_KEY, a
# variable NAME_FILE that names a file (a Docker or Kubernetes secret, or the
# key the Compose stack generates) sets NAME to that file's contents. A NAME
# that is already set wins over its NAME_FILE. The settings themselves only
# read NAME.
set -eu

for name in DJANGO_SECRET_KEY JWT_PRIVATE_KEY JWT_PUBLIC_KEY; do
    eval "file=\${${name}_FILE:-}"
    eval "value=\${${name}:-}"
    if [ -n "$file" ] && [ -z "$value" ]; then
        if [ ! -r "$file" ]; then
            echo "entrypoint: ${name}_FILE=$file is not a readable file" >&2
            exit 1
        fi
        export "$name=$(cat "$file")"
    fi
    unset "${name}_FILE"
done

# prometheus_client's multiprocess mode keeps one file per process in
# PROMETHEUS_MULTIPROC_DIR; files of a previous run would count twice. Only
# the container's main process (PID 1) empties it: a health check that runs
# this script beside a live worker must not.
# Set the variable to empty to run without it (ADR 0023).
PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR-/tmp/prometheus-multiproc}"
if [ -n "$PROMETHEUS_MULTIPROC_DIR" ]; then
    export PROMETHEUS_MULTIPROC_DIR
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    if [ "$$" = 1 ]; then
        find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete
    fi
else
    unset PROMETHEUS_MULTIPROC_DIR
fi

# The database aliases, in migration order.
DATABASE_ALIASES="${DATABASE_ALIASES:-default orders catalog}"

case "${1:-web}" in
web)
    exec granian --interface wsgi --host 0.0.0.0 --port 8000 \
        --workers "${WEB_WORKERS:-2}" --blocking-threads "${WEB_THREADS:-4}" \
        --no-ws --static-path-route /static \
        --static-path-mount /app/staticfiles config.wsgi:application
    ;;
worker)
    # WORKER_QUEUES (comma-separated): only these task queues instead of
    # Celery's default one (overlays/split-catalog's catalog worker).
    set -- celery -A config worker --loglevel "${LOG_LEVEL:-INFO}" \
        --concurrency "${WORKER_CONCURRENCY:-2}" --hostname "celery@%h"
    if [ -n "${WORKER_QUEUES:-}" ]; then
        set -- "$@" --queues "$WORKER_QUEUES"
    fi
    exec "$@"
    ;;
beat)
    # The schedule's state file goes to /tmp: the root file system may be
    # read-only.
    exec celery -A config beat --loglevel "${LOG_LEVEL:-INFO}" \
        --schedule "${BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}"
    ;;
relay)
    exec python manage.py relay_outbox
    ;;
migrate)
    for alias in $DATABASE_ALIASES; do
        python manage.py migrate --database "$alias" --noinput
    done
    ;;
wait-migrations)
    deadline=$(($(date +%s) + ${MIGRATIONS_WAIT_SECONDS:-600}))
    for alias in $DATABASE_ALIASES; do
        until python manage.py migrate --check --database "$alias" \
            >/dev/null 2>&1; do
            if [ "$(date +%s)" -ge "$deadline" ]; then
                echo "entrypoint: alias $alias is still not migrated" >&2
                exit 1
            fi
            sleep 5
        done
    done
    ;;
check)
    exec python manage.py check --deploy --fail-level ERROR
    ;;
*)
    exec "$@"
    ;;
esac
