#!/bin/sh
# Entrypoint of the shop image: load secrets given as files, then run the
# command (granian, celery, manage.py, ...).
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

# Prometheus multiprocess mode (ADR 0023): every process of a server (the
# web's granian workers, a Celery worker's pool) writes its metrics to files
# in one directory, which the server's start empties so that counts of an
# earlier run are not added in. Other commands (a health check's
# `celery inspect ping`, manage.py) leave it alone: they may run beside the
# server in its container. Set the variable to empty to run without it.
PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR-/tmp/prometheus-multiproc}"
if [ -n "$PROMETHEUS_MULTIPROC_DIR" ]; then
    export PROMETHEUS_MULTIPROC_DIR
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    case " $* " in
        *" granian "* | *" gunicorn "* | *" worker "*)
            find "$PROMETHEUS_MULTIPROC_DIR" -mindepth 1 -delete ;;
    esac
else
    unset PROMETHEUS_MULTIPROC_DIR
fi

exec "$@"
