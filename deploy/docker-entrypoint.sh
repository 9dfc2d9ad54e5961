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

exec "$@"
